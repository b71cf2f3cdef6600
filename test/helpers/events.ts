import { randomUUID } from 'node:crypto';
import type { LoggedEvent } from '../../src/changelog/changelog.js';
import { envelopeJson, type OrderEvent } from '../../src/events/envelope.js';
import { publicationOf, type Publication } from '../../src/messaging/broker.js';

export interface EventSpec {
  orderId?: number;
  sequence?: number;
  email?: string;
  /** Extra characters in client_name, to make large events. */
  padding?: number;
}

/** An envelope as the service writes it; sequence 1 is the order's creation. */
export function makeEvent({ orderId = 1, sequence = 1, email = 'john.doe@example.com', padding = 0 }: EventSpec = {}): OrderEvent {
  const statuses = ['Pending', 'Confirmed', 'Shipped', 'Delivered'] as const;
  const status = statuses[Math.min(sequence - 1, 3)] ?? 'Pending';
  const at = new Date(Date.UTC(2026, 10, 25, 12, 0, sequence)).toISOString();
  return {
    id: randomUUID(),
    type: sequence === 1 ? 'order.created' : 'order.status_changed',
    schema_version: 1,
    occurred_at: at,
    order_id: orderId,
    sequence,
    order: {
      id: orderId,
      product_id: 1,
      quantity: 2,
      client_name: `John Doe${'x'.repeat(padding)}`,
      client_email: email,
      status,
      total_price: 200,
      unit_price: 100,
      created_at: at,
      updated_at: at,
      version: sequence,
    },
    ...(sequence === 1 ? {} : { change: { from: statuses[Math.min(sequence - 2, 3)] ?? 'Pending', to: status } }),
  };
}

/** Events as a publisher hands them to a broker; `positions`, when given, are their log positions. */
export function publications(events: readonly OrderEvent[], positions: readonly string[] = []): Publication[] {
  return events.map((event, i) => publicationOf(event, positions[i]));
}

/** Events as the change log receives them: each with its JSON as the database renders it (money with two decimals). */
export function logged(events: readonly OrderEvent[]): LoggedEvent[] {
  return events.map((event) => ({ event, body: envelopeJson(event) }));
}

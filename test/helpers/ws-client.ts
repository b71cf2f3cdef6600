import WebSocket from 'ws';
import type { OrderEvent } from '../../src/events/envelope.js';

export interface EventClient {
  readonly events: OrderEvent[];
  /** Receipt time (performance.now()) of each event, by event id. */
  readonly receivedAt: Map<string, number>;
  waitFor(count: number, timeoutMs?: number): Promise<OrderEvent[]>;
  close(): void;
}

/** A WebSocket client that records every event it receives. */
export async function openEventClient(url: string, headers: Record<string, string> = {}): Promise<EventClient> {
  const ws = new WebSocket(url, { headers });
  const events: OrderEvent[] = [];
  const receivedAt = new Map<string, number>();
  ws.on('message', (data) => {
    const event = JSON.parse(String(data)) as OrderEvent;
    receivedAt.set(event.id, performance.now());
    events.push(event);
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
  });
  return {
    events,
    receivedAt,
    async waitFor(count, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (events.length < count) {
        if (Date.now() > deadline) throw new Error(`got ${events.length} of ${count} events within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 10));
      }
      return events;
    },
    close: () => ws.close(),
  };
}

/** Each order's sequences as received, to check order and duplicates per order. */
export function sequencesByOrder(events: readonly OrderEvent[]): Map<number, number[]> {
  const byOrder = new Map<number, number[]>();
  for (const e of events) byOrder.set(e.order_id, [...(byOrder.get(e.order_id) ?? []), e.sequence]);
  return byOrder;
}

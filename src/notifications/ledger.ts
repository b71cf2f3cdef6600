import type { OrderEvent } from '../events/envelope.js';

export type Verdict = 'new' | 'duplicate' | 'stale';

export interface LedgerLimits {
  /** Event ids remembered for duplicate detection. */
  readonly recentEventIds: number;
  /** Orders whose last broadcast sequence is remembered. */
  readonly trackedOrders: number;
}

/** What the hub has already broadcast, so broker redeliveries reach clients once and in order. */
export interface EventLedger {
  /** Records the event when it is new; otherwise says why it must be dropped. */
  admit(event: OrderEvent): Verdict;
  /** True when this event id is among those remembered. */
  knows(id: string): boolean;
  /** True when the hub has broadcast this event or one later in the same order. */
  hasPassed(orderId: number, sequence: number, id: string): boolean;
}

export function createEventLedger(limits: LedgerLimits): EventLedger {
  // Insertion-ordered, so the first entry is always the oldest one to evict.
  const recentIds = new Set<string>();
  const lastSequence = new Map<number, number>();
  // Iterators kept for good, each standing at the oldest entry: a fresh one would walk past every entry deleted so
  // far (V8 keeps them until it rehashes), which made each eviction cost up to the bound once the ledger was full.
  const oldestIds = recentIds.values();
  const oldestOrders = lastSequence.keys();

  function rememberId(id: string): void {
    recentIds.add(id);
    if (recentIds.size > limits.recentEventIds) recentIds.delete(oldestIds.next().value as string);
  }

  function rememberSequence(orderId: number, sequence: number): void {
    // Delete first so an active order moves to the young end and is evicted last.
    lastSequence.delete(orderId);
    lastSequence.set(orderId, sequence);
    if (lastSequence.size > limits.trackedOrders) lastSequence.delete(oldestOrders.next().value as number);
  }

  return {
    admit(event) {
      if (recentIds.has(event.id)) return 'duplicate';
      const last = lastSequence.get(event.order_id);
      if (last !== undefined && event.sequence <= last) return 'stale';
      rememberId(event.id);
      rememberSequence(event.order_id, event.sequence);
      return 'new';
    },
    knows: (id) => recentIds.has(id),
    hasPassed(orderId, sequence, id) {
      if (recentIds.has(id)) return true;
      const last = lastSequence.get(orderId);
      return last !== undefined && sequence <= last;
    },
  };
}

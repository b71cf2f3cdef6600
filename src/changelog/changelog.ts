import type { OrderEvent } from '../events/envelope.js';

/** The append-only record of every order change, written once per event id. */
export interface ChangeLog {
  /** Stores the events; an event already stored (same id) is left as it is. Resolves to how many were new. */
  append(events: readonly OrderEvent[]): Promise<number>;
  /** One order's events, oldest first. */
  history(orderId: number): Promise<OrderEvent[]>;
  /** 'up', or what is wrong, answered within about 2 s: for /readyz. */
  state(): Promise<string>;
  close(): Promise<void>;
}

export const CHANGE_LOG_COLLECTION = 'order_changes';

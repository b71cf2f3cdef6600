import type { OrderEvent } from '../events/envelope.js';

/** An event as the change log receives it: the envelope, and its JSON exactly as published (money with two decimals). */
export interface LoggedEvent {
  readonly event: OrderEvent;
  readonly body: string;
}

/** The append-only record of every order change, written once per event id. */
export interface ChangeLog {
  /** Stores the events; an event already stored (same id) is left as it is. Resolves to how many were new. */
  append(events: readonly LoggedEvent[]): Promise<number>;
  /**
   * One order's events, oldest first, as a JSON array with money written with two decimals, as published. With
   * `createdAt`, only the events of the order created then: a failover that lost orders can hand their ids out again.
   */
  history(orderId: number, createdAt?: string): Promise<string>;
  /** 'up', or what is wrong, answered within about 2 s: for /readyz. */
  state(): Promise<string>;
  close(): Promise<void>;
}

export const CHANGE_LOG_COLLECTION = 'order_changes';

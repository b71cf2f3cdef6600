import { ApiError } from '../errors.js';
import type { OrderStatus } from '../events/envelope.js';

const NEXT: Record<OrderStatus, readonly OrderStatus[]> = {
  Pending: ['Confirmed', 'Cancelled'],
  Confirmed: ['Shipped', 'Cancelled'],
  Shipped: ['Delivered'],
  Delivered: [],
  Cancelled: [],
};

export interface StatusChange {
  readonly from: OrderStatus;
  readonly to: OrderStatus;
  /** The sequence of the event this change produces. */
  readonly sequence: number;
  /** A cancelled order gives its stock back. */
  readonly restock: boolean;
}

/** Decides whether an order may move to `to`; pure, so every rule is tested without a database. */
export function changeStatus(order: { status: OrderStatus; version: number }, to: OrderStatus): StatusChange {
  if (!NEXT[order.status].includes(to)) {
    const allowed = NEXT[order.status];
    const hint = allowed.length ? `it can move to ${allowed.join(' or ')}` : 'it is final';
    throw new ApiError('invalid_transition', `An order that is ${order.status} cannot become ${to}: ${hint}.`);
  }
  return { from: order.status, to, sequence: order.version + 1, restock: to === 'Cancelled' };
}

import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/errors.js';
import { ORDER_STATUSES, type OrderStatus } from '../../src/events/envelope.js';
import { changeStatus } from '../../src/orders/status.js';

const ALLOWED: [OrderStatus, OrderStatus][] = [
  ['Pending', 'Confirmed'],
  ['Confirmed', 'Shipped'],
  ['Shipped', 'Delivered'],
  ['Pending', 'Cancelled'],
  ['Confirmed', 'Cancelled'],
];

describe('order status transitions', () => {
  for (const from of ORDER_STATUSES) {
    for (const to of ORDER_STATUSES) {
      const allowed = ALLOWED.some(([f, t]) => f === from && t === to);
      it(`when an order that is ${from} is asked to become ${to}, then it is ${allowed ? 'allowed' : 'refused'}`, () => {
        if (allowed) {
          expect(changeStatus({ status: from, version: 3 }, to)).toEqual({ from, to, sequence: 4, restock: to === 'Cancelled' });
        } else {
          expect(() => changeStatus({ status: from, version: 3 }, to)).toThrow(ApiError);
        }
      });
    }
  }
});

/** The API's shapes, as docs/api.md and docs/events.md give them. */
export const STATUSES = ['Pending', 'Confirmed', 'Shipped', 'Delivered', 'Cancelled'] as const;
export type Status = (typeof STATUSES)[number];

export interface Order {
  id: number;
  product_id: number;
  quantity: number;
  client_name: string;
  client_email: string;
  status: Status;
  total_price: number;
  unit_price: number;
  created_at: string;
  updated_at: string;
  version: number;
}

export interface OrderEvent {
  id: string;
  type: 'order.created' | 'order.status_changed';
  occurred_at: string;
  order_id: number;
  sequence: number;
  order: Order;
  change?: { from: Status; to: Status };
}

export interface Product {
  id: number;
  name: string;
  price: number;
  stock: number | null;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** Where an order may go next; the server decides, this only offers the buttons. */
export const NEXT: Record<Status, Status[]> = {
  Pending: ['Confirmed', 'Cancelled'],
  Confirmed: ['Shipped', 'Cancelled'],
  Shipped: ['Delivered'],
  Delivered: [],
  Cancelled: [],
};

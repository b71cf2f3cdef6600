import { useEffect, useRef, useState } from 'preact/hooks';
import { call, get } from '../api';
import type { Subscribe } from '../bus';
import { formatMoney, formatTime } from '../format';
import { NEXT, type Order, type OrderEvent, type Product, type Status } from '../types';
import { StatusBadge } from './StatusBadge';

interface Props {
  id: number;
  products: Product[];
  subscribe: Subscribe;
  report: (error: unknown) => void;
  announce: (text: string) => void;
  onClose: () => void;
}

/** One order: its fields, the statuses it may move to, and its history, kept current by live events. */
export function OrderDetail({ id, products, subscribe, report, announce, onClose }: Props) {
  const [order, setOrder] = useState<Order>();
  const [history, setHistory] = useState<OrderEvent[]>();
  const [busy, setBusy] = useState(false);
  const panel = useRef<HTMLElement>(null);

  // On a phone the panel sits below the list: bring it into view when an order is picked.
  useEffect(() => panel.current?.scrollIntoView({ block: 'nearest', behavior: 'smooth' }), [id]);

  useEffect(() => {
    get<Order>(`/orders/${id}`).then(setOrder, report);
    get<OrderEvent[]>(`/orders/${id}/history`).then(setHistory, (error: unknown) => (setHistory([]), report(error)));
  }, [id, report]);

  useEffect(
    () =>
      subscribe((event) => {
        if (event.order_id !== id) return;
        setOrder((o) => (!o || o.version < event.order.version ? event.order : o));
        setHistory((h) => (h && !h.some((e) => e.id === event.id) ? [...h, event].sort((a, b) => a.sequence - b.sequence) : h));
      }),
    [id, subscribe],
  );

  const move = async (to: Status) => {
    if (!order) return;
    setBusy(true);
    try {
      // If-Match: the change applies only to the version on screen, never over one the operator has not seen.
      const { body } = await call<Order>('PATCH', `/orders/${id}`, { status: to }, { 'if-match': `"${order.version}"` });
      setOrder((o) => (!o || o.version < body.version ? body : o));
      announce(`Order #${id} is now ${body.status}.`);
    } catch (error) {
      report(error);
      get<Order>(`/orders/${id}`).then(setOrder, () => undefined);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section ref={panel} class="panel detail" aria-labelledby="detail-title" data-testid="order-detail">
      <div class="panel-head">
        <h2 id="detail-title">Order #{id}</h2>
        <button type="button" class="ghost small" onClick={onClose} aria-label="Close order">
          ✕
        </button>
      </div>
      {!order ? (
        <p class="muted empty">Loading…</p>
      ) : (
        <>
          <dl class="facts">
            <div>
              <dt>Status</dt>
              <dd>
                <StatusBadge status={order.status} />
              </dd>
            </div>
            <div>
              <dt>Client</dt>
              <dd>
                {order.client_name} <span class="muted">{order.client_email}</span>
              </dd>
            </div>
            <div>
              <dt>Product</dt>
              <dd>
                {products.find((p) => p.id === order.product_id)?.name ?? `#${order.product_id}`} × {order.quantity} at{' '}
                {formatMoney(order.unit_price)}
              </dd>
            </div>
            <div>
              <dt>Total</dt>
              <dd class="strong">{formatMoney(order.total_price)}</dd>
            </div>
            <div>
              <dt>Version</dt>
              <dd>{order.version}</dd>
            </div>
          </dl>
          <div class="actions" aria-label="Move the order">
            {NEXT[order.status].length === 0 ? (
              <span class="muted small">{order.status} is final.</span>
            ) : (
              NEXT[order.status].map((to) => (
                <button type="button" key={to} class={to === 'Cancelled' ? 'danger' : ''} disabled={busy} onClick={() => void move(to)}>
                  {to === 'Cancelled' ? 'Cancel order' : `Mark ${to}`}
                </button>
              ))
            )}
          </div>
        </>
      )}
      <h3>History</h3>
      {!history ? (
        <p class="muted empty">Loading…</p>
      ) : history.length === 0 ? (
        <p class="muted empty">No events in the change log yet.</p>
      ) : (
        <ol class="history" data-testid="history">
          {history.map((e) => (
            <li key={e.id}>
              <span class="seq">{e.sequence}</span>
              <span class="what">{e.change ? `${e.change.from} → ${e.change.to}` : 'Created'}</span>
              <span class="muted small">{formatTime(e.occurred_at)}</span>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

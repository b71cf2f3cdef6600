import { useEffect, useState } from 'preact/hooks';
import { get } from '../api';
import type { Subscribe } from '../bus';
import { formatMoney, formatTime } from '../format';
import { STATUSES, type Order, type OrderEvent, type Page, type Product } from '../types';
import { StatusBadge } from './StatusBadge';

const PAGE_SIZE = 20;

interface Filter {
  status: string;
  email: string;
}

interface Props {
  subscribe: Subscribe;
  report: (error: unknown) => void;
  selected: number | undefined;
  onSelect: (id: number) => void;
  products: Product[];
}

/** The latest orders, newest first, a page at a time; live events update them in place. */
export function Orders({ subscribe, report, selected, onSelect, products }: Props) {
  const productName = (id: number) => products.find((p) => p.id === id)?.name ?? `#${id}`;
  const [draft, setDraft] = useState<Filter>({ status: '', email: '' });
  const [filter, setFilter] = useState<Filter>({ status: '', email: '' });
  // Cursors of the pages walked through; the last is the page shown (undefined = the newest).
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const [page, setPage] = useState<Page<Order>>();
  const [fresh, setFresh] = useState<ReadonlySet<number>>(new Set());
  const cursor = cursors.at(-1);
  const first = cursors.length === 1;

  useEffect(() => {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (filter.status) query.set('status', filter.status);
    if (filter.email) query.set('client_email', filter.email);
    if (cursor) query.set('cursor', cursor);
    let current = true;
    get<Page<Order>>(`/orders?${query}`).then((p) => current && setPage(p), report);
    return () => void (current = false);
  }, [filter, cursor, report]);

  useEffect(
    () =>
      subscribe((event: OrderEvent) => {
        const order = event.order;
        setPage((p) => {
          if (!p) return p;
          const at = p.items.findIndex((o) => o.id === order.id);
          if (at !== -1) {
            if (p.items[at]!.version >= order.version) return p;
            return { ...p, items: p.items.map((o, i) => (i === at ? order : o)) };
          }
          // A new order belongs on the newest page when it passes the filter; the page grows rather than drop a row.
          const matches = (!filter.status || order.status === filter.status) && (!filter.email || order.client_email === filter.email);
          if (event.type !== 'order.created' || !first || !matches) return p;
          return { ...p, items: [order, ...p.items] };
        });
        setFresh((ids) => new Set(ids).add(order.id));
      }),
    [subscribe, filter, first],
  );

  const apply = (e: Event) => {
    e.preventDefault();
    setFilter({ status: draft.status, email: draft.email.trim() });
    setCursors([undefined]);
  };

  return (
    <section class="panel" aria-labelledby="orders-title">
      <div class="panel-head">
        <h2 id="orders-title">Orders</h2>
        <span class="muted small">newest first</span>
      </div>
      <form class="filters" onSubmit={apply} role="search">
        <label>
          Status
          <select value={draft.status} onChange={(e) => setDraft({ ...draft, status: e.currentTarget.value })}>
            <option value="">All</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label class="grow">
          Client email
          <input
            type="email"
            placeholder="exact address"
            value={draft.email}
            onInput={(e) => setDraft({ ...draft, email: e.currentTarget.value })}
          />
        </label>
        <button type="submit">Filter</button>
      </form>
      {!page ? (
        <p class="muted empty">Loading…</p>
      ) : page.items.length === 0 ? (
        <p class="muted empty">No orders{filter.status || filter.email ? ' match this filter' : ' yet'}.</p>
      ) : (
        <table class="orders cards-on-phone">
          <thead>
            <tr>
              <th>#</th>
              <th>Client</th>
              <th>Product</th>
              <th class="num">Qty</th>
              <th class="num">Total</th>
              <th>Status</th>
              <th>Updated</th>
            </tr>
          </thead>
          <tbody>
            {page.items.map((o) => (
              <tr
                key={`${o.id}:${o.version}`}
                data-order-id={o.id}
                class={[o.id === selected ? 'selected' : '', fresh.has(o.id) ? 'flash' : ''].join(' ')}
                onClick={() => onSelect(o.id)}
                tabIndex={0}
                onKeyDown={(e) => e.key === 'Enter' && onSelect(o.id)}
              >
                <td data-label="Order">#{o.id}</td>
                <td data-label="Client">
                  <span>
                    <span class="strong block">{o.client_name}</span>
                    <span class="muted small block">{o.client_email}</span>
                  </span>
                </td>
                <td data-label="Product">{productName(o.product_id)}</td>
                <td data-label="Qty" class="num">
                  {o.quantity}
                </td>
                <td data-label="Total" class="num">
                  {formatMoney(o.total_price)}
                </td>
                <td data-label="Status">
                  <StatusBadge status={o.status} />
                </td>
                <td data-label="Updated" class="muted small">
                  {formatTime(o.updated_at)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div class="pager">
        <button type="button" class="ghost" disabled={first} onClick={() => setCursors(cursors.slice(0, -1))}>
          ← Newer
        </button>
        <span class="muted small">Page {cursors.length}</span>
        <button
          type="button"
          class="ghost"
          disabled={!page?.next_cursor}
          onClick={() => page?.next_cursor && setCursors([...cursors, page.next_cursor])}
        >
          Older →
        </button>
      </div>
    </section>
  );
}

import { useEffect, useState } from 'preact/hooks';
import { call } from '../api';
import { formatMoney } from '../format';
import type { Order, Product } from '../types';

interface Props {
  products: Product[];
  report: (error: unknown) => void;
  announce: (text: string) => void;
  onCreated: (id: number) => void;
}

/** Places an order from the catalog; an Idempotency-Key per submission makes a double click or a retry harmless. */
export function NewOrder({ products, report, announce, onCreated }: Props) {
  const [productId, setProductId] = useState('');
  const [quantity, setQuantity] = useState('1');
  const [name, setName] = useState('');
  const [email, setEmail] = useState('');
  const [busy, setBusy] = useState(false);
  const [attempt, setAttempt] = useState(() => crypto.randomUUID());

  useEffect(() => {
    if (!productId && products[0]) setProductId(String(products[0].id));
  }, [products, productId]);

  const product = products.find((p) => String(p.id) === productId);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      const body = { product_id: Number(productId), quantity: Number(quantity), client_name: name, client_email: email.trim() };
      const { body: order } = await call<Order>('POST', '/orders/', body, { 'idempotency-key': attempt });
      announce(`Order #${order.id} created: ${formatMoney(order.total_price)}.`);
      onCreated(order.id);
      setName('');
      setEmail('');
      setQuantity('1');
      setAttempt(crypto.randomUUID());
    } catch (error) {
      report(error);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="panel" aria-labelledby="new-title">
      <div class="panel-head">
        <h2 id="new-title">New order</h2>
      </div>
      <form class="stack" onSubmit={(e) => void submit(e)}>
        <label>
          Product
          <select value={productId} onChange={(e) => setProductId(e.currentTarget.value)} required>
            {products.map((p) => (
              <option key={p.id} value={p.id}>
                {p.name} · {formatMoney(p.price)}
                {p.stock === null ? '' : ` · ${p.stock} left`}
              </option>
            ))}
          </select>
        </label>
        <div class="row">
          <label class="narrow">
            Quantity
            <input
              type="number"
              min={1}
              max={10000}
              step={1}
              value={quantity}
              onInput={(e) => setQuantity(e.currentTarget.value)}
              required
            />
          </label>
          <div class="total">
            <span class="muted small">Total</span>
            <span class="strong">{product ? formatMoney(product.price * Number(quantity || 0)) : '—'}</span>
          </div>
        </div>
        <label>
          Client name
          <input type="text" maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} required autoComplete="off" />
        </label>
        <label>
          Client email
          <input type="email" maxLength={254} value={email} onInput={(e) => setEmail(e.currentTarget.value)} required autoComplete="off" />
        </label>
        <button type="submit" disabled={busy || !product}>
          {busy ? 'Creating…' : 'Create order'}
        </button>
      </form>
    </section>
  );
}

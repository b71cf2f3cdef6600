import { useState } from 'preact/hooks';
import { call } from '../api';
import type { Product } from '../types';

interface Props {
  products: Product[];
  report: (error: unknown) => void;
  announce: (text: string) => void;
  reload: () => void;
}

/** Prices and stock, edited in place; a blank stock means unlimited. */
export function Catalog({ products, report, announce, reload }: Props) {
  return (
    <section class="panel" aria-labelledby="catalog-title">
      <div class="panel-head">
        <h2 id="catalog-title">Catalog</h2>
        <span class="muted small">blank stock = unlimited</span>
      </div>
      <div class="catalog" data-testid="catalog">
        {products.map((p) => (
          <ProductRow key={`${p.id}:${p.price}:${p.stock}`} product={p} report={report} announce={announce} reload={reload} />
        ))}
      </div>
      <AddProduct report={report} announce={announce} reload={reload} />
    </section>
  );
}

const stockText = (stock: number | null) => (stock === null ? '' : String(stock));
const stockValue = (text: string) => (text.trim() === '' ? null : Number(text));

function ProductRow({ product, report, announce, reload }: { product: Product } & Omit<Props, 'products'>) {
  const [price, setPrice] = useState(product.price.toFixed(2));
  const [stock, setStock] = useState(stockText(product.stock));
  const changed = Number(price) !== product.price || stockValue(stock) !== product.stock;

  const save = async (e: Event) => {
    e.preventDefault();
    try {
      await call('PATCH', `/products/${product.id}`, { price: Number(price), stock: stockValue(stock) });
      announce(`${product.name} saved.`);
      reload();
    } catch (error) {
      report(error);
    }
  };

  return (
    <form class="product" onSubmit={(e) => void save(e)} aria-label={product.name} data-product-id={product.id}>
      <span class="product-name">
        {product.name} <span class="muted small">#{product.id}</span>
      </span>
      <label>
        Price
        <input
          type="number"
          min={0}
          step="0.01"
          inputMode="decimal"
          value={price}
          onInput={(e) => setPrice(e.currentTarget.value)}
          required
        />
      </label>
      <label>
        Stock
        <input type="number" min={0} step={1} placeholder="∞" value={stock} onInput={(e) => setStock(e.currentTarget.value)} />
      </label>
      <button type="submit" class={changed ? '' : 'ghost'} disabled={!changed}>
        Save
      </button>
    </form>
  );
}

function AddProduct({ report, announce, reload }: Omit<Props, 'products'>) {
  const [name, setName] = useState('');
  const [price, setPrice] = useState('');
  const [stock, setStock] = useState('');

  const add = async (e: Event) => {
    e.preventDefault();
    try {
      await call('POST', '/products', { name, price: Number(price), stock: stockValue(stock) });
      announce(`${name} added to the catalog.`);
      setName('');
      setPrice('');
      setStock('');
      reload();
    } catch (error) {
      report(error);
    }
  };

  return (
    <details class="add-product">
      <summary>Add a product</summary>
      <form class="product" onSubmit={(e) => void add(e)} aria-label="New product">
        <label class="product-name">
          Name
          <input type="text" maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} required />
        </label>
        <label>
          Price
          <input type="number" min={0} step="0.01" value={price} onInput={(e) => setPrice(e.currentTarget.value)} required />
        </label>
        <label>
          Stock
          <input type="number" min={0} step={1} placeholder="∞" value={stock} onInput={(e) => setStock(e.currentTarget.value)} />
        </label>
        <button type="submit">Add</button>
      </form>
    </details>
  );
}

import { asc, eq, gt, sql } from 'drizzle-orm';
import type { Drizzle } from '../db/client.js';
import { products } from '../db/schema.js';

/** A product as JSON text rendered by the database: `numeric` keeps its two decimals (`25.50`). */
export type ProductJson = string & { readonly __brand: 'ProductJson' };

const json = sql<ProductJson>`row_to_json((SELECT r FROM
  (SELECT ${products.id}, ${products.name}, ${products.price}, ${products.stock}) AS r))::text`;
const columns = { id: products.id, json };

/** Cents as an exact decimal string, so a float never reaches the database. */
const toDecimal = (price: number): string => price.toFixed(2);

export async function listProducts(db: Drizzle, afterId: number, limit: number): Promise<{ id: number; json: ProductJson }[]> {
  return db.select(columns).from(products).where(gt(products.id, afterId)).orderBy(asc(products.id)).limit(limit);
}

export async function findProduct(db: Drizzle, id: number): Promise<ProductJson | undefined> {
  const [row] = await db.select(columns).from(products).where(eq(products.id, id));
  return row?.json;
}

export async function insertProduct(
  db: Drizzle,
  p: { name: string; price: number; stock?: number | null | undefined },
): Promise<{ id: number; json: ProductJson }> {
  const [row] = await db
    .insert(products)
    .values({ name: p.name, price: toDecimal(p.price), stock: p.stock ?? null })
    .returning(columns);
  return row!;
}

export async function updateProduct(
  db: Drizzle,
  id: number,
  changes: { name?: string | undefined; price?: number | undefined; stock?: number | null | undefined },
): Promise<ProductJson | undefined> {
  const [row] = await db
    .update(products)
    .set({
      ...(changes.name !== undefined ? { name: changes.name } : {}),
      ...(changes.price !== undefined ? { price: toDecimal(changes.price) } : {}),
      ...(changes.stock !== undefined ? { stock: changes.stock } : {}),
      updatedAt: sql`now()`,
    })
    .where(eq(products.id, id))
    .returning(columns);
  return row?.json;
}

export const DEMO_CATALOG = [
  { id: 1, name: 'Demo widget', price: '100.00', stock: null },
  { id: 2, name: 'Demo gadget', price: '25.50', stock: 1000 },
  { id: 3, name: 'Limited edition print', price: '249.99', stock: 10 },
];

/** Loads the demo catalog; products that already exist are left alone, so it can run again. */
export async function seedDemoCatalog(db: Drizzle): Promise<number> {
  const inserted = await db.insert(products).values(DEMO_CATALOG).onConflictDoNothing().returning({ id: products.id });
  // Explicit ids leave the identity behind; move it past them so new products don't collide.
  await db.execute(sql`SELECT setval(pg_get_serial_sequence('products', 'id'), (SELECT max(id) FROM products))`);
  return inserted.length;
}

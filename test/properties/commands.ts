import fc from 'fast-check';
import { expect } from 'vitest';
import { fingerprintOf, ORDER_STATUSES, type ModelOrder, type OrderInput, type OrderStatus } from '../helpers/order-model.js';
import { expectOrderBody, expectOrderItems, expectProblem, expectProduct, send, type Answer } from './http.js';
import { EMAIL_SLOTS, KEY_SLOTS, PRODUCT_SLOTS, UNKNOWN_ORDER_ID, UNKNOWN_PRODUCT_ID, type Model, type OrderCommand, type Real } from './world.js';

/** An order body by slots, resolved against the run's products and emails when it runs. */
export interface OrderSpec {
  /** A product slot, or -1 for a product that does not exist. */
  product: number;
  quantity: number;
  name: string;
  email: number;
}

export function resolve(model: Model, spec: OrderSpec): OrderInput {
  return {
    product_id: spec.product < 0 ? UNKNOWN_PRODUCT_ID : model.productIds[spec.product]!,
    quantity: spec.quantity,
    client_name: spec.name,
    client_email: model.emails[spec.email]!,
  };
}

/** Picks one of the model's orders by index, or the unknown id when pick is -1. */
export function pickOrder(model: Model, pick: number): number {
  const ids = model.state.orderIds();
  return pick < 0 || ids.length === 0 ? UNKNOWN_ORDER_ID : ids[pick % ids.length]!;
}

const name = fc
  .tuple(fc.oneof({ weight: 4, arbitrary: fc.string({ minLength: 1, maxLength: 20, unit: 'grapheme-ascii' }) }, fc.string({ minLength: 1, maxLength: 8, unit: 'grapheme' })), fc.boolean())
  // The API refuses control characters in names; that refusal is tested elsewhere.
  .filter(([n]) => n.trim().length > 0 && [...n].every((c) => c.charCodeAt(0) > 0x1f && c !== '\u007f'))
  .map(([n, padded]) => (padded ? `  ${n} ` : n));

export const orderSpec: fc.Arbitrary<OrderSpec> = fc.record({
  product: fc.oneof({ weight: 12, arbitrary: fc.integer({ min: 0, max: PRODUCT_SLOTS - 1 }) }, fc.constant(-1)),
  quantity: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 4 }) }, fc.integer({ min: 1, max: 10_000 })),
  name,
  email: fc.integer({ min: 0, max: EMAIL_SLOTS - 1 }),
});

export const orderPick = fc.oneof({ weight: 12, arbitrary: fc.nat() }, fc.constant(-1));
export const status = fc.constantFrom(...ORDER_STATUSES);

/** Checks a create answer against the model's decision and, when created, records the order. */
export function expectCreated(model: Model, input: OrderInput, answer: Answer, context: string): ModelOrder | undefined {
  const decision = model.state.decideCreate(input);
  if (decision.status !== 201) {
    expectProblem(answer, decision.status, decision.code, context);
    if (decision.code === 'unknown_product') expect(answer.json<{ errors: { field: string }[] }>().errors.map((e) => e.field), context).toContain('product_id');
    return undefined;
  }
  expect(answer.status, `${context}: ${answer.body}`).toBe(201);
  const body = answer.json<{ id: number; created_at: string; updated_at: string }>();
  expect(answer.headers.location, context).toBe(`/orders/${body.id}`);
  expect(body.updated_at, context).toBe(body.created_at);
  const order = model.state.applyCreate(body.id, input, body.created_at);
  expectOrderBody(answer, order, context);
  return order;
}

abstract class Command implements OrderCommand {
  abstract readonly label: string;
  check(_model: Readonly<Model>): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    real.stats.count(this.label);
    await this.apply(model, real);
  }
  protected abstract apply(model: Model, real: Real): Promise<void>;
  abstract toString(): string;
}

class CreateOrder extends Command {
  readonly label = 'create';
  constructor(readonly spec: OrderSpec) {
    super();
  }
  protected async apply(model: Model, { app }: Real) {
    const input = resolve(model, this.spec);
    expectCreated(model, input, await send(app, 'POST', '/orders/', input), this.toString());
  }
  toString(): string {
    return `create(${JSON.stringify(this.spec)})`;
  }
}

/** POST with a key slot: first use creates, the same body again is replayed, another body is 422. */
class CreateWithKey extends Command {
  readonly label = 'create with key';
  constructor(
    readonly slot: number,
    readonly spec: OrderSpec,
  ) {
    super();
  }
  protected async apply(model: Model, { app }: Real) {
    const input = resolve(model, this.spec);
    await postKeyed(model, app, this.slot, input, this.toString());
  }
  toString(): string {
    return `createWithKey(${this.slot}, ${JSON.stringify(this.spec)})`;
  }
}

/** Sends a key slot's first body again, its fields in another order: the same request. */
class RetryKey extends Command {
  readonly label = 'retry key';
  constructor(readonly slot: number) {
    super();
  }
  override check(model: Readonly<Model>): boolean {
    return model.keyedBodies.has(this.slot);
  }
  protected async apply(model: Model, { app }: Real) {
    const input = model.keyedBodies.get(this.slot)!;
    const reordered = Object.fromEntries(Object.entries(input).reverse()) as unknown as OrderInput;
    await postKeyed(model, app, this.slot, reordered, this.toString());
  }
  toString(): string {
    return `retryKey(${this.slot})`;
  }
}

export const keyOf = (model: Model, slot: number | string) => `${model.runId}-${slot}`;

async function postKeyed(model: Model, app: Real['app'], slot: number, input: OrderInput, context: string): Promise<void> {
  const key = keyOf(model, slot);
  const decision = model.state.decideKeyed(key, fingerprintOf(input));
  const answer = await send(app, 'POST', '/orders/', input, { 'idempotency-key': key });
  if (decision.kind === 'reused') {
    expectProblem(answer, decision.status, decision.code, context);
    return;
  }
  if (decision.kind === 'replay') {
    expect(answer.status, `${context}: ${answer.body}`).toBe(decision.answer.status);
    expect(answer.headers['idempotent-replayed'], context).toBe('true');
    expect(answer.body, context).toBe(decision.answer.body);
    return;
  }
  expect(answer.headers['idempotent-replayed'], context).toBeUndefined();
  expectCreated(model, input, answer, context);
  model.state.remember(key, { fingerprint: fingerprintOf(input), status: answer.status, body: answer.body });
  model.keyedBodies.set(slot, input);
}

class ChangeStatus extends Command {
  readonly label: string;
  constructor(
    readonly pick: number,
    readonly to: OrderStatus,
    label = 'change status',
  ) {
    super();
    this.label = label;
  }
  protected async apply(model: Model, { app }: Real) {
    const id = pickOrder(model, this.pick);
    const decision = model.state.decideStatusChange(id, this.to);
    const answer = await send(app, 'PATCH', `/orders/${id}`, { status: this.to });
    if (decision.status !== 200) {
      expectProblem(answer, decision.status, decision.code, this.toString());
      return;
    }
    expect(answer.status, `${this.toString()}: ${answer.body}`).toBe(200);
    const order = model.state.applyStatusChange(id, this.to);
    expectOrderBody(answer, order, this.toString());
    if (this.to === 'Cancelled') {
      // The stock came back in the same change: read it now.
      const product = model.state.products.get(order.product_id)!;
      expectProduct(await send(app, 'GET', `/products/${product.id}`), product, `${this.toString()}: stock returned`);
    }
  }
  toString(): string {
    return `${this.label === 'cancel' ? 'cancel' : `changeStatus(${this.to})`}(#${this.pick})`;
  }
}

class PatchProduct extends Command {
  readonly label = 'change product';
  constructor(
    readonly slot: number,
    readonly changes: { priceCents?: number; stock?: number | null },
  ) {
    super();
  }
  protected async apply(model: Model, { app }: Real) {
    const id = model.productIds[this.slot]!;
    const payload = {
      ...(this.changes.priceCents !== undefined ? { price: this.changes.priceCents / 100 } : {}),
      ...(this.changes.stock !== undefined ? { stock: this.changes.stock } : {}),
    };
    const answer = await send(app, 'PATCH', `/products/${id}`, payload);
    expectProduct(answer, model.state.patchProduct(id, this.changes)!, this.toString());
  }
  toString(): string {
    return `patchProduct(${this.slot}, ${JSON.stringify(this.changes)})`;
  }
}

class ReadOrder extends Command {
  readonly label = 'read order';
  constructor(readonly pick: number) {
    super();
  }
  protected async apply(model: Model, { app }: Real) {
    const id = pickOrder(model, this.pick);
    const answer = await send(app, 'GET', `/orders/${id}`);
    const order = model.state.orders.get(id);
    if (!order) return expectProblem(answer, 404, 'order_not_found', this.toString());
    expect(answer.status, this.toString()).toBe(200);
    expectOrderBody(answer, order, this.toString());
  }
  toString(): string {
    return `readOrder(#${this.pick})`;
  }
}

class ReadProduct extends Command {
  readonly label = 'read product';
  constructor(readonly slot: number) {
    super();
  }
  protected async apply(model: Model, { app }: Real) {
    if (this.slot < 0) return expectProblem(await send(app, 'GET', `/products/${UNKNOWN_PRODUCT_ID}`), 404, 'product_not_found', this.toString());
    const id = model.productIds[this.slot]!;
    expectProduct(await send(app, 'GET', `/products/${id}`), model.state.products.get(id)!, this.toString());
  }
  toString(): string {
    return `readProduct(${this.slot})`;
  }
}

/** Pages through a filtered list with the cursor; the run's own product or email keeps other runs out. */
class ListOrders extends Command {
  readonly label = 'list';
  constructor(
    readonly by: 'product' | 'email',
    readonly slot: number,
    readonly status: OrderStatus | undefined,
    readonly limit: number,
  ) {
    super();
  }
  protected async apply(model: Model, { app }: Real) {
    const filter = {
      ...(this.by === 'product' ? { product_id: model.productIds[this.slot % PRODUCT_SLOTS]! } : { client_email: model.emails[this.slot % EMAIL_SLOTS]! }),
      ...(this.status ? { status: this.status } : {}),
    };
    const expected = model.state.list(filter);
    const pages = Math.max(1, Math.ceil(expected.length / this.limit));
    let cursor: string | null = null;
    for (let page = 0; page < pages; page++) {
      const query = new URLSearchParams({ ...Object.fromEntries(Object.entries(filter).map(([k, v]) => [k, String(v)])), limit: String(this.limit), ...(cursor ? { cursor } : {}) });
      const answer = await send(app, 'GET', `/orders?${query}`);
      expect(answer.status, `${this.toString()}: ${answer.body}`).toBe(200);
      expectOrderItems(answer, expected.slice(page * this.limit, (page + 1) * this.limit), `${this.toString()} page ${page}`);
      cursor = answer.json<{ next_cursor: string | null }>().next_cursor;
      expect(cursor === null, `${this.toString()} page ${page}: next_cursor`).toBe(page === pages - 1);
    }
  }
  toString(): string {
    return `list(${this.by} ${this.slot}, ${this.status ?? 'any status'}, limit ${this.limit})`;
  }
}

export const sequentialCommands: fc.Arbitrary<OrderCommand>[] = [
  orderSpec.map((spec) => new CreateOrder(spec)),
  fc.tuple(fc.integer({ min: 0, max: KEY_SLOTS - 1 }), orderSpec).map(([slot, spec]) => new CreateWithKey(slot, spec)),
  fc.integer({ min: 0, max: KEY_SLOTS - 1 }).map((slot) => new RetryKey(slot)),
  fc.tuple(orderPick, status).map(([pick, to]) => new ChangeStatus(pick, to)),
  orderPick.map((pick) => new ChangeStatus(pick, 'Cancelled', 'cancel')),
  fc
    .tuple(
      fc.integer({ min: 0, max: PRODUCT_SLOTS - 1 }),
      fc.option(fc.integer({ min: 0, max: 9_999_999_999 }), { nil: undefined }),
      fc.option(fc.option(fc.integer({ min: 0, max: 12 }), { nil: null }), { nil: undefined }),
    )
    .filter(([, price, stock]) => price !== undefined || stock !== undefined)
    .map(([slot, priceCents, stock]) => new PatchProduct(slot, { ...(priceCents !== undefined ? { priceCents } : {}), ...(stock !== undefined ? { stock } : {}) })),
  orderPick.map((pick) => new ReadOrder(pick)),
  fc.integer({ min: -1, max: PRODUCT_SLOTS - 1 }).map((slot) => new ReadProduct(slot)),
  fc
    .tuple(fc.constantFrom('product' as const, 'email' as const), fc.nat(), fc.option(status, { nil: undefined }), fc.integer({ min: 1, max: 4 }))
    .map(([by, slot, s, limit]) => new ListOrders(by, slot, s, limit)),
];

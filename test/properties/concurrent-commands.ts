import fc from 'fast-check';
import { expect } from 'vitest';
import { canMove, fingerprintOf, type OrderStatus } from '../helpers/order-model.js';
import { expectCreated, keyOf, orderSpec, pickOrder, resolve, status, type OrderSpec } from './commands.js';
import { expectOrderBody, expectProblem, expectProduct, send, type Answer } from './http.js';
import { EMAIL_SLOTS, PRODUCT_SLOTS, type Model, type OrderCommand, type Real } from './world.js';

const problemCode = (answer: Answer): string | undefined =>
  answer.headers['content-type']?.toString().startsWith('application/problem+json') ? answer.json<{ code: string }>().code : undefined;

/** N orders at once for one product: exactly as many succeed as its stock allows, the rest are 409. */
class ConcurrentCreates implements OrderCommand {
  constructor(
    readonly slot: number,
    readonly quantity: number,
    readonly count: number,
  ) {}
  check = () => true;
  async run(model: Model, { app, stats }: Real): Promise<void> {
    stats.count('concurrent creates');
    const context = this.toString();
    const product = model.state.products.get(model.productIds[this.slot]!)!;
    const inputs = Array.from({ length: this.count }, (_, i) => resolve(model, { product: this.slot, quantity: this.quantity, name: `racer ${i}`, email: i % EMAIL_SLOTS }));
    const fits = product.stock === null ? this.count : Math.min(this.count, Math.floor(product.stock / this.quantity));
    const answers = await Promise.all(inputs.map((input) => send(app, 'POST', '/orders/', input)));

    const created = answers.map((answer, i) => ({ answer, input: inputs[i]! })).filter(({ answer }) => answer.status === 201);
    expect(created.length, `${context}: orders created with stock ${product.stock}`).toBe(fits);
    for (const answer of answers.filter((a) => a.status !== 201)) expectProblem(answer, 409, 'insufficient_stock', context);
    for (const { answer, input } of created) expectCreated(model, input, answer, context);
    expectProduct(await send(app, 'GET', `/products/${product.id}`), product, `${context}: stock after`);
  }
  toString = () => `concurrentCreates(${this.count} × product ${this.slot} × ${this.quantity})`;
}

/**
 * Several status changes of one order at once. Those that succeed form one valid chain of
 * transitions, versions without a gap; each refused one was invalid in some state of that chain.
 */
class ConcurrentStatusChanges implements OrderCommand {
  constructor(
    readonly pick: number,
    readonly targets: readonly OrderStatus[],
  ) {}
  check = (model: Readonly<Model>) => model.state.orders.size > 0;
  async run(model: Model, { app, stats }: Real): Promise<void> {
    stats.count('concurrent status changes');
    const context = this.toString();
    const id = pickOrder(model, this.pick);
    const before = { ...model.state.orders.get(id)! };
    const answers = await Promise.all(this.targets.map((to) => send(app, 'PATCH', `/orders/${id}`, { status: to })));

    const winners = answers
      .map((answer, i) => ({ answer, to: this.targets[i]! }))
      .filter(({ answer }) => answer.status === 200)
      .sort((a, b) => a.answer.json<{ version: number }>().version - b.answer.json<{ version: number }>().version);
    const chain = [before.status, ...winners.map((w) => w.to)];
    expect(
      winners.map((w) => w.answer.json<{ version: number }>().version),
      `${context}: versions of the changes that won`,
    ).toEqual(winners.map((_, i) => before.version + i + 1));
    for (let i = 1; i < chain.length; i++) expect(canMove(chain[i - 1]!, chain[i]!), `${context}: ${chain.join(' → ')}`).toBe(true);
    answers.forEach((answer, i) => {
      if (answer.status === 200) return;
      expectProblem(answer, 409, 'invalid_transition', context);
      const to = this.targets[i]!;
      expect(chain.some((s) => !canMove(s, to)), `${context}: ${to} refused though valid from every state of ${chain.join(' → ')}`).toBe(true);
    });

    for (const { answer, to } of winners) expectOrderBody(answer, model.state.applyStatusChange(id, to), context);
    const product = model.state.products.get(before.product_id)!;
    if (chain.includes('Cancelled')) expectProduct(await send(app, 'GET', `/products/${product.id}`), product, `${context}: stock returned`);
  }
  toString = () => `concurrentStatusChanges(#${this.pick}, ${this.targets.join(' | ')})`;
}

/** The same key and body sent N times at once: one request does the work, the rest replay it or are told it runs. */
class ConcurrentKeyedCreates implements OrderCommand {
  constructor(
    readonly spec: OrderSpec,
    readonly count: number,
  ) {}
  check = () => true;
  async run(model: Model, { app, stats }: Real): Promise<void> {
    stats.count('concurrent keyed creates');
    const context = this.toString();
    const key = keyOf(model, `burst-${++model.bursts}`);
    const input = resolve(model, this.spec);
    const post = () => send(app, 'POST', '/orders/', input, { 'idempotency-key': key });
    const answers = await Promise.all(Array.from({ length: this.count }, post));

    const running = answers.filter((a) => a.status === 409 && problemCode(a) === 'idempotency_request_in_progress');
    const replayed = answers.filter((a) => a.headers['idempotent-replayed'] === 'true');
    const firsts = answers.filter((a) => !running.includes(a) && !replayed.includes(a));
    expect(firsts.length, `${context}: answers that did the work: ${answers.map((a) => a.status).join(',')}`).toBe(1);
    const first = firsts[0]!;
    expectCreated(model, input, first, context);
    for (const answer of replayed) expect({ status: answer.status, body: answer.body }, `${context}: replay`).toEqual({ status: first.status, body: first.body });
    model.state.remember(key, { fingerprint: fingerprintOf(input), status: first.status, body: first.body });

    const again = await post();
    expect({ status: again.status, replayed: again.headers['idempotent-replayed'], body: again.body }, `${context}: retry afterwards`).toEqual({
      status: first.status,
      replayed: 'true',
      body: first.body,
    });
  }
  toString = () => `concurrentKeyedCreates(${this.count} × ${JSON.stringify(this.spec)})`;
}

export const concurrentCommands: fc.Arbitrary<OrderCommand>[] = [
  fc
    .tuple(fc.integer({ min: 0, max: PRODUCT_SLOTS - 1 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 2, max: 8 }))
    .map(([slot, quantity, count]) => new ConcurrentCreates(slot, quantity, count)),
  fc.tuple(fc.nat(), fc.array(status, { minLength: 2, maxLength: 4 })).map(([pick, targets]) => new ConcurrentStatusChanges(pick, targets)),
  fc.tuple(orderSpec, fc.integer({ min: 2, max: 6 })).map(([spec, count]) => new ConcurrentKeyedCreates(spec, count)),
];

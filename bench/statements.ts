import type { Queryable } from '../src/db/client.js';
import { findOrderJson, insertOrder, type NewOrder } from '../src/orders/repository.js';

export interface Statement {
  readonly text: string;
  readonly params: readonly unknown[];
}

/** Runs a repository function against a recorder: the bench measures the exact SQL the API sends. */
async function capture(run: (db: Queryable) => Promise<unknown>): Promise<Statement> {
  let seen: Statement | undefined;
  const recorder: Queryable = {
    query: async <T>(text: string, params: readonly unknown[] = []) => {
      seen ??= { text, params };
      return [] as T[];
    },
  };
  await run(recorder);
  if (!seen) throw new Error('the repository sent no statement');
  return seen;
}

/** The one statement that creates an order, with the parameters the API would pass for `order`. */
export function createOrderStatement(order: NewOrder): Promise<Statement> {
  return capture((db) => insertOrder(db, order));
}

export function getOrderStatement(id: number): Promise<Statement> {
  return capture((db) => findOrderJson(db, id));
}

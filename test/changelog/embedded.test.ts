import { describe, expect, it } from 'vitest';
import { createEmbeddedChangeLog } from '../../src/changelog/embedded.js';
import type { Queryable } from '../../src/db/client.js';

describe('embedded change log', () => {
  it('when nothing is to be appended, then the database is not asked, so an empty batch succeeds even while it is away', async () => {
    const unreachable = { query: () => Promise.reject(new Error('Connection terminated unexpectedly')) } as unknown as Queryable;
    expect(await createEmbeddedChangeLog(unreachable).append([])).toBe(0);
  });
});

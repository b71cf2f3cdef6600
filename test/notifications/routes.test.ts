import { afterEach, describe, expect, it } from 'vitest';
import { connect, makeEvent, refusedUpgrade, startNotifier, type Notifier } from './harness.js';

let notifier: Notifier;
afterEach(async () => {
  await notifier?.close();
});

describe('GET /ws/notifications query', () => {
  it.each([
    ['after', { after: 'not-a-uuid' }],
    ['order_id', { order_id: '0' }],
    ['order_id', { order_id: 'abc' }],
    ['order_id', { order_id: '1.5' }],
    ['client_email', { client_email: 'not an email' }],
  ])('when %s is invalid (%o), then the upgrade is refused with 422 problem+json naming it', async (field, query) => {
    notifier = await startNotifier();

    const answer = await refusedUpgrade(notifier.url(query));

    expect(answer.status).toBe(422);
    expect(answer.contentType).toContain('application/problem+json');
    const problem = JSON.parse(answer.body) as { code: string; errors: { field: string }[] };
    expect(problem.code).toBe('validation_failed');
    expect(problem.errors.map((e) => e.field)).toEqual([field]);
    expect(notifier.hub.clientCount()).toBe(0);
  });

  it('when the query is valid, with an access_token beside it, then the socket opens with that filter', async () => {
    notifier = await startNotifier();

    const client = await connect(notifier.url({ order_id: 3, client_email: 'a@example.com', access_token: 'ignored-here' }));
    notifier.hub.broadcast(makeEvent({ orderId: 3, email: 'b@example.com' }));
    const match = makeEvent({ orderId: 3, sequence: 2, email: 'A@example.com' });
    notifier.hub.broadcast(match);

    expect((await client.waitForEvents(1)).map((e) => e.id)).toEqual([match.id]);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { connect, makeEvent, refusedUpgrade, startNotifier, waitFor, type Notifier } from './harness.js';

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

describe('GET /ws/notifications while the notifier is not subscribed', () => {
  it('when the notifier is not ready within the wait, then the upgrade is refused with 503 notifier_not_ready after waiting 2 s at most, and no socket opens', async () => {
    const waits: number[] = [];
    notifier = await startNotifier({ whenReady: async (ms) => (waits.push(ms), false) });

    const answer = await refusedUpgrade(notifier.url());

    expect(answer.status).toBe(503);
    expect(answer.contentType).toContain('application/problem+json');
    expect(JSON.parse(answer.body)).toMatchObject({
      code: 'notifier_not_ready',
      detail: 'The notifier is not subscribed to the event stream yet (starting, or its broker connection is back soon); retry shortly.',
    });
    expect(waits).toEqual([2000]);
    expect(notifier.hub.clientCount()).toBe(0);
  });

  it('when the notifier becomes ready while the upgrade waits, then the socket opens and gets what is broadcast', async () => {
    let ready!: (ok: boolean) => void;
    notifier = await startNotifier({ whenReady: () => new Promise((resolve) => (ready = resolve)) });

    const connecting = connect(notifier.url());
    await waitFor(() => ready !== undefined, 5000, 'the upgrade to wait for readiness');
    expect(notifier.hub.clientCount()).toBe(0);
    ready(true);
    const client = await connecting;
    const event = makeEvent({ orderId: 5 });
    notifier.hub.broadcast(event);

    expect((await client.waitForEvents(1)).map((e) => e.id)).toEqual([event.id]);
  });

  it('when a plain GET comes, then it is told to upgrade (426) without waiting for readiness', async () => {
    const waits: number[] = [];
    notifier = await startNotifier({ whenReady: async (ms) => (waits.push(ms), false) });

    const answer = await fetch(notifier.url().replace('ws://', 'http://'));

    expect(answer.status).toBe(426);
    expect(waits).toEqual([]);
  });
});

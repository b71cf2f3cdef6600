import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OrderEvent } from '../../src/events/envelope.js';
import { call, sleep } from '../faults/crash/http.js';
import { orderInput } from '../helpers/factories.js';
import { realServicesRequired, Topology, unreachableServices, waitReady, type Member } from './harness.js';
import { readOutbox, type LoggedRow } from './invariants.js';
import { deliveryProblems, openRecordingSocket, UpgradeRefused, type RecordingSocket } from './socket.js';

const unreachable = unreachableServices();
const skip = unreachable.length > 0 && !realServicesRequired;
const skipNote = skip ? ` (skipped: ${unreachable.join(' and ')} not reachable)` : '';

/** How long after the notifier's connection is back every client must have every event. */
const DELIVERY_MS = 15_000;

/** Orders created (every second one confirmed) through the api until stopped: a bounded loop. */
function startWriting(api: Member): { stop(): Promise<{ requests: number; failures: string[] }> } {
  let writing = true;
  let requests = 0;
  const failures: string[] = [];
  const loop = (async () => {
    for (let n = 0; writing && n < 5_000; n++) {
      const created = await call(api.url!, 'POST', '/orders/', orderInput());
      requests++;
      if (created.status !== 201 || !created.body) {
        failures.push(`POST answered ${created.status}`);
        await sleep(100);
        continue;
      }
      if (n % 2 === 0) {
        const { id } = JSON.parse(created.body) as { id: number };
        const confirmed = await call(api.url!, 'PATCH', `/orders/${id}`, { status: 'Confirmed' });
        requests++;
        if (confirmed.status !== 200) failures.push(`PATCH answered ${confirmed.status}`);
      }
      await sleep(5);
    }
  })();
  return {
    async stop() {
      writing = false;
      await loop;
      return { requests, failures };
    },
  };
}

const wsUrl = (member: Member, after?: string) => `${member.url!.replace(/^http/, 'ws')}/ws/notifications${after ? `?after=${after}` : ''}`;

/** Polls (bounded) until every recorder holds every expected event. */
async function until(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done() && Date.now() < deadline) await sleep(100);
}

const holdsAll = (events: readonly OrderEvent[], expected: readonly LoggedRow[]) => {
  const ids = new Set(events.map((e) => e.id));
  return expected.every((r) => ids.has(r.id));
};

describe.skipIf(skip)(`a notifier's continuity comes from the log, not from its RabbitMQ connection${skipNote}`, () => {
  let topology: Topology | undefined;

  beforeAll(async () => {
    if (unreachable.length > 0) throw new Error(`REQUIRE_REAL_SERVICES=1 but ${unreachable.join(' and ')} not reachable`);
    topology = await Topology.open({
      members: [
        { name: 'api', role: 'api' },
        { name: 'notifier', role: 'notifier' },
      ],
    });
    await topology.start();
  }, 120_000);

  afterAll(async () => {
    await topology?.close();
  }, 60_000);

  /** The events written since `before` (ids of the outbox then), in log order, once all are shipped. */
  const writtenSince = async (before: Set<string>) => (await readOutbox(topology!.db, 20_000)).rows.filter((r) => !before.has(r.id));
  const outboxIds = async () => new Set((await readOutbox(topology!.db, 20_000)).rows.map((r) => r.id));

  it('when the notifier\'s own RabbitMQ connection is cut for 3 s while an api keeps writing, then every connected client gets every event written meanwhile, once and in order, on the socket it had', { timeout: 90_000 }, async () => {
    const t = topology!;
    const notifier = t.member('notifier');
    const before = await outboxIds();
    const clients: RecordingSocket[] = [];
    for (let i = 0; i < 3; i++) clients.push(await openRecordingSocket(wsUrl(notifier)));
    try {
      const writer = startWriting(t.member('api'));
      await sleep(1_000);
      await notifier.rabbitmq.reset();
      await sleep(3_000);
      await notifier.rabbitmq.restore();
      const restoredAt = Date.now();
      await sleep(1_500);
      const { requests, failures } = await writer.stop();
      expect(failures, 'the api kept taking orders').toEqual([]);

      const expected = await writtenSince(before);
      await until(() => clients.every((c) => holdsAll(c.events, expected)), DELIVERY_MS);
      const lateMs = Date.now() - restoredAt;
      // A late duplicate would come after the last missing event: give it a moment.
      await sleep(500);
      process.stdout.write(
        `notifier RabbitMQ cut: ${requests} requests, ${expected.length} events written; clients received ${clients.map((c) => c.events.length).join(', ')} ` +
          `(${(lateMs / 1000).toFixed(1)} s after the connection was back); sockets ${clients.map((c) => (c.closedWith === undefined ? 'open' : `closed ${c.closedWith}`)).join(', ')}\n`,
      );
      clients.forEach((client, i) => {
        expect.soft(client.closedWith, `client ${i + 1}'s socket stayed open`).toBeUndefined();
        expect.soft(deliveryProblems(`client ${i + 1}`, client.events, expected), `client ${i + 1}: every event written during the cut, once, in order per order, within ${DELIVERY_MS / 1000} s`).toEqual([]);
      });
    } finally {
      clients.forEach((c) => c.close());
      await notifier.rabbitmq.restore();
    }
  });

  it('when the notifier is killed and started again while orders are written, then it refuses upgrades with 503 notifier_not_ready until its queue is bound, and a client that resumes with ?after= gets every event once, in order', { timeout: 120_000 }, async () => {
    const t = topology!;
    const notifier = t.member('notifier');
    const before = await outboxIds();
    let socket = await openRecordingSocket(wsUrl(notifier));
    const received: OrderEvent[] = [];
    const writer = startWriting(t.member('api'));
    const sockets: RecordingSocket[] = [socket];
    try {
      await sleep(1_000);
      await notifier.kill();
      await until(() => socket.closedWith !== undefined, 5_000);
      received.push(...socket.events);
      // Started while its broker cannot be reached: listening, but with no queue bound yet.
      await notifier.rabbitmq.reset();
      await notifier.start();

      let probe: string;
      try {
        const early = await openRecordingSocket(wsUrl(notifier));
        sockets.push(early);
        early.close();
        probe = 'accepted';
      } catch (error) {
        if (!(error instanceof UpgradeRefused)) throw error;
        probe = `${error.status} ${error.code} Retry-After ${error.retryAfter ?? 'none'}`;
        expect.soft(error.retryAfter, 'Retry-After on notifier_not_ready').toMatch(/^\d+$/);
      }
      expect.soft(probe, 'an upgrade before the queue is bound').toMatch(/^503 notifier_not_ready /);

      // The client resumes from its last event, retrying while the notifier is not ready; the broker comes back meanwhile.
      const restore = sleep(2_000).then(() => notifier.rabbitmq.restore());
      let notReady = 0;
      const resumeDeadline = Date.now() + 30_000;
      for (;;) {
        try {
          socket = await openRecordingSocket(wsUrl(notifier, received.at(-1)?.id));
          sockets.push(socket);
          break;
        } catch (error) {
          if (!(error instanceof UpgradeRefused) || error.code !== 'notifier_not_ready' || Date.now() > resumeDeadline) throw error;
          notReady++;
          await sleep(Math.min(Number(error.retryAfter) * 1000 || 500, 1_000));
        }
      }
      await restore;
      await waitReady(notifier, 30_000);
      await sleep(2_000);
      const { requests, failures } = await writer.stop();
      expect(failures, 'the api kept taking orders').toEqual([]);

      const expected = await writtenSince(before);
      await until(() => holdsAll([...received, ...socket.events], expected), DELIVERY_MS);
      await sleep(500);
      received.push(...socket.events);
      process.stdout.write(
        `notifier restart: ${requests} requests, ${expected.length} events written; upgrade before the queue was bound: ${probe}; ` +
          `resumed after ${notReady} answers 503 notifier_not_ready; the client received ${received.length} events\n`,
      );
      expect.soft(deliveryProblems('the resumed client', received, expected), 'every event once, in order per order, across the restart').toEqual([]);
    } finally {
      await writer.stop();
      sockets.forEach((s) => s.close());
      await notifier.rabbitmq.restore();
    }
  });
});

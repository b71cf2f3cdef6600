import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import type { NotificationHub } from '../../src/notifications/hub.js';
import { connect, makeEvent, rawClient, startNotifier, waitFor, type Notifier } from './harness.js';

let notifier: Notifier;
afterEach(async () => {
  await notifier?.close();
});

const BOUND = 256 * 1024;
const EVENT_PADDING = 64 * 1024;

/** Broadcasts large events, letting I/O run between them, until the hub has disconnected a slow consumer. */
async function floodUntilSlowConsumerClosed(hub: NotificationHub): Promise<{ sent: number; bytes: number }> {
  let bytes = 0;
  for (let sent = 1; sent <= 2000; sent++) {
    const event = makeEvent({ orderId: sent, padding: EVENT_PADDING });
    bytes += JSON.stringify(event).length;
    hub.broadcast(event);
    await new Promise((resolve) => setImmediate(resolve));
    if (hub.stats().slowConsumerDisconnects > 0) return { sent, bytes };
  }
  throw new Error('no slow consumer was disconnected after 2000 large events');
}

describe('slow consumers', () => {
  it('when a client stops reading, then it is closed with 4008 and its send buffer never passes the bound', async () => {
    notifier = await startNotifier({ hub: { maxBufferedBytes: BOUND, closeGraceMs: 10_000 } });
    const reader = await connect(notifier.url());
    const stalled = await connect(notifier.url());
    stalled.ws.pause();

    const { sent, bytes } = await floodUntilSlowConsumerClosed(notifier.hub);

    const stats = notifier.hub.stats();
    expect(stats.peakBufferedBytes).toBeLessThanOrEqual(BOUND);
    expect(stats.bufferedBytes).toBeLessThanOrEqual(2 * BOUND);
    expect(bytes).toBeGreaterThan(8 * BOUND);
    stalled.ws.resume();
    expect(await stalled.closed).toEqual({ code: 4008, reason: `slow consumer: send buffer over ${BOUND} bytes` });
    expect(stalled.events.length).toBeLessThan(sent);
    await reader.waitForEvents(sent, 10_000);
    expect(reader.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('when a raw client never reads, then it is terminated after the close grace period and the others are still served', async () => {
    notifier = await startNotifier({ hub: { maxBufferedBytes: BOUND, closeGraceMs: 200 } });
    const reader = await connect(notifier.url());
    const raw = await rawClient(notifier.port);
    const rawClosed = once(raw, 'close');
    expect(notifier.hub.clientCount()).toBe(2);

    const { sent } = await floodUntilSlowConsumerClosed(notifier.hub);

    expect(notifier.hub.stats().peakBufferedBytes).toBeLessThanOrEqual(BOUND);
    await waitFor(() => notifier.hub.clientCount() === 1, 3000, 'the stalled socket to be terminated');
    raw.resume();
    await rawClosed;
    await reader.waitForEvents(sent, 10_000);
    notifier.hub.broadcast(makeEvent({ orderId: 1_000_000 }));
    await reader.waitForEvents(sent + 1);
  });
});

describe('keep-alive', () => {
  it('when a client does not answer pings, then it is terminated; one that answers stays', async () => {
    notifier = await startNotifier({ hub: { pingIntervalMs: 100 } });
    const answering = await connect(notifier.url());
    const silent = await connect(notifier.url(), { autoPong: false });
    let pings = 0;
    answering.ws.on('ping', () => (pings += 1));

    expect((await silent.closed).code).toBe(1006);
    await waitFor(() => pings >= 4, 2000, 'several pings');
    expect(answering.ws.readyState).toBe(WebSocket.OPEN);
    expect(notifier.hub.clientCount()).toBe(1);
  });
});

describe('what clients send', () => {
  it('when clients send messages, garbage, oversized or invalid frames, then they are ignored or closed and the server keeps serving', async () => {
    notifier = await startNotifier();
    const bystander = await connect(notifier.url());
    const chatty = await connect(notifier.url());
    const oversized = await connect(notifier.url());
    const badUtf8 = await connect(notifier.url());
    const raw = await rawClient(notifier.port);
    raw.resume();
    const rawClosed = once(raw, 'close');

    for (let i = 0; i < 500; i++) chatty.ws.send(i % 2 ? `{"subscribe": ${i}}` : Buffer.from([0, 1, 2, 255, i % 256]));
    oversized.ws.send('x'.repeat(5000));
    badUtf8.ws.send(Buffer.from([0xc3, 0x28]), { binary: false });
    // Unmasked, with a reserved opcode: two protocol violations from a client.
    raw.write(Buffer.from([0x83, 0x05, 1, 2, 3, 4, 5]));

    expect((await oversized.closed).code).toBe(1009);
    expect((await badUtf8.closed).code).toBe(1007);
    await rawClosed;
    await sleep(50);
    const event = makeEvent();
    notifier.hub.broadcast(event);
    expect((await bystander.waitForEvents(1))[0]?.id).toBe(event.id);
    expect((await chatty.waitForEvents(1))[0]?.id).toBe(event.id);
    expect(notifier.hub.clientCount()).toBe(2);
  });
});

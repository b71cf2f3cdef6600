import WebSocket from 'ws';
import type { OrderEvent } from '../../src/events/envelope.js';
import type { LoggedRow } from './invariants.js';

/** An upgrade the server answered over HTTP instead. */
export class UpgradeRefused extends Error {
  override name = 'UpgradeRefused';
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    readonly retryAfter: string | undefined,
  ) {
    super(`upgrade answered ${status} ${code ?? ''} (Retry-After: ${retryAfter ?? 'none'})`);
  }
}

/** One WebSocket connection that records every event and how it ended. */
export interface RecordingSocket {
  readonly events: OrderEvent[];
  /** The close code, once the socket has closed. */
  readonly closedWith: number | undefined;
  close(): void;
}

/** Opens a socket (bounded); rejects with UpgradeRefused when the server answers over HTTP. */
export function openRecordingSocket(url: string, timeoutMs = 5_000): Promise<RecordingSocket> {
  const ws = new WebSocket(url, { handshakeTimeout: timeoutMs });
  const events: OrderEvent[] = [];
  let closedWith: number | undefined;
  ws.on('message', (data) => events.push(JSON.parse(String(data)) as OrderEvent));
  ws.on('close', (code) => (closedWith = code));
  return new Promise((resolve, reject) => {
    ws.once('open', () =>
      resolve({
        events,
        get closedWith() {
          return closedWith;
        },
        close: () => ws.close(1000),
      }),
    );
    ws.once('error', reject);
    ws.once('unexpected-response', (_request, response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString()));
      response.on('end', () => {
        ws.terminate();
        const code = /"code"\s*:\s*"([^"]+)"/.exec(text)?.[1];
        const retryAfter = response.headers['retry-after'];
        reject(new UpgradeRefused(response.statusCode ?? 0, code, Array.isArray(retryAfter) ? retryAfter[0] : retryAfter));
      });
    });
  });
}

/** What a client that was there for all of `expected` did wrong: events missed, got twice, out of order per order, or never written. */
export function deliveryProblems(name: string, events: readonly OrderEvent[], expected: readonly LoggedRow[]): string[] {
  const problems: string[] = [];
  const got = new Set(events.map((e) => e.id));
  const wanted = new Set(expected.map((r) => r.id));
  const missed = expected.filter((r) => !got.has(r.id));
  if (missed.length) problems.push(`${name} missed ${missed.length} of ${expected.length} events (${new Set(missed.map((r) => r.orderId)).size} orders), e.g. order ${missed[0]!.orderId} sequence ${missed[0]!.sequence}`);
  const twice = events.length - got.size;
  if (twice) problems.push(`${name} got ${twice} events twice`);
  const unknown = events.filter((e) => !wanted.has(e.id));
  if (unknown.length) problems.push(`${name} got ${unknown.length} events that were not written during the test`);
  const last = new Map<number, number>();
  const outOfOrder: string[] = [];
  const seen = new Set<string>();
  for (const event of events) {
    if (seen.has(event.id) || !wanted.has(event.id)) continue;
    seen.add(event.id);
    const previous = last.get(event.order_id) ?? 0;
    if (event.sequence !== previous + 1) outOfOrder.push(`order ${event.order_id}: sequence ${event.sequence} after ${previous}`);
    last.set(event.order_id, Math.max(previous, event.sequence));
  }
  if (outOfOrder.length) problems.push(`${name}: ${outOfOrder.length} events do not follow their order's previous one, e.g. ${outOfOrder.slice(0, 3).join('; ')}`);
  return problems;
}

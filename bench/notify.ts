import { Agent, request } from 'node:http';
import type { OrderLedger } from './http.js';
import { Samples, type LatencySummary } from './stats.js';

export interface OpenLoopResult {
  sent: number;
  /** POST response time from the scheduled send time. */
  latency: LatencySummary;
  /** How late the timer fired against the schedule, worst case. */
  maxScheduleLagMs: number;
  seconds: number;
}

/**
 * Open loop: POST /orders/ on a fixed schedule, `rate` per second for `seconds`, whatever the answers do.
 * The scheduled time is the send time, so a stalled server shows as latency, not as a slower schedule.
 */
export async function openLoopOrders(url: string, ledger: OrderLedger, rate: number, seconds: number): Promise<OpenLoopResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const total = Math.round(rate * seconds);
  const interval = 1000 / rate;
  const samples = new Samples(total);
  const answers: Promise<void>[] = [];
  let maxLag = 0;
  const origin = performance.now() + 20;

  const send = (scheduled: number) => {
    const at = performance.timeOrigin + scheduled;
    const { seq, body } = ledger.next(at);
    answers.push(
      new Promise<void>((resolve) => {
        const req = request(`${url}/orders/`, {
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          timeout: 30_000,
        });
        req.once('timeout', () => req.destroy(new Error('timed out')));
        req.once('error', (err) => {
          ledger.problem(`POST #${seq}: ${err.message}`);
          resolve();
        });
        req.once('response', (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.once('end', () => {
            samples.add(performance.now() - scheduled);
            ledger.answer(seq, res.statusCode ?? 0, text, res.headers.location);
            resolve();
          });
        });
        req.end(body);
      }),
    );
  };

  await new Promise<void>((done) => {
    let i = 0;
    const tick = () => {
      const now = performance.now();
      while (i < total && origin + i * interval <= now) {
        maxLag = Math.max(maxLag, now - (origin + i * interval));
        send(origin + i * interval);
        i += 1;
      }
      if (i >= total) return done();
      setTimeout(tick, Math.max(0, origin + i * interval - performance.now()));
    };
    setTimeout(tick, 20);
  });
  const sentAll = performance.now();
  await Promise.all(answers);
  agent.destroy();
  return { sent: total, latency: samples.summary(), maxScheduleLagMs: maxLag, seconds: (sentAll - origin) / 1000 };
}

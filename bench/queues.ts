import { httpRequest } from './process.js';

/** The depths the bench follows during a run, by their Prometheus names (docs/operations.md#metrics). */
const QUEUES = {
  outboxBacklogEvents: 'outbox_backlog_events',
  oldestUnsentSeconds: 'outbox_oldest_unsent_age_seconds',
  websocketBufferedBytes: 'websocket_buffered_bytes',
  eventLoopLagSeconds: 'nodejs_eventloop_lag_seconds',
} as const;

export type QueueName = keyof typeof QUEUES;

export interface QueueDepths {
  /** Every sample, in order, `everyMs` apart. */
  samples: Partial<Record<QueueName, number>>[];
  max: Partial<Record<QueueName, number>>;
  last: Partial<Record<QueueName, number>>;
}

/** The unlabelled samples of the named metrics in a Prometheus text exposition. */
export function readQueues(text: string): Partial<Record<QueueName, number>> {
  const found: Partial<Record<QueueName, number>> = {};
  for (const line of text.split('\n')) {
    const [name, value] = line.split(' ');
    for (const [key, metric] of Object.entries(QUEUES) as [QueueName, string][]) {
      if (name === metric && value !== undefined && Number.isFinite(Number(value))) found[key] = Number(value);
    }
  }
  return found;
}

/**
 * Reads the service's /metrics every `everyMs` until stopped: whether a stage falls behind shows as a
 * depth that grows for as long as the load lasts, where a constant cost would stay flat.
 */
export function followQueues(url: string, everyMs = 500): { stop(): Promise<QueueDepths> } {
  const samples: Partial<Record<QueueName, number>>[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const started = performance.now();
      const answer = await httpRequest(`${url}/metrics`).catch(() => undefined);
      if (answer?.status === 200) samples.push(readQueues(answer.body));
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, everyMs - (performance.now() - started))));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      const max: Partial<Record<QueueName, number>> = {};
      for (const sample of samples) {
        for (const [key, value] of Object.entries(sample) as [QueueName, number][]) max[key] = Math.max(max[key] ?? value, value);
      }
      return { samples, max, last: samples.at(-1) ?? {} };
    },
  };
}

import { describe, expect, it } from 'vitest';
import { readQueues } from '../../bench/queues.js';

describe('the queue depths the bench reads from /metrics', () => {
  it('when the exposition has the gauges, then each depth is read from its unlabelled sample', () => {
    const text = [
      '# HELP outbox_backlog_events events written and not yet confirmed',
      '# TYPE outbox_backlog_events gauge',
      'outbox_backlog_events 42',
      'outbox_oldest_unsent_age_seconds 0.25',
      'websocket_buffered_bytes 2048',
      'nodejs_eventloop_lag_seconds 0.0031',
      'nodejs_eventloop_lag_p99_seconds 0.5',
      'http_requests_total{method="GET",route="/metrics",status="200"} 7',
    ].join('\n');

    expect(readQueues(text)).toEqual({ outboxBacklogEvents: 42, oldestUnsentSeconds: 0.25, websocketBufferedBytes: 2048, eventLoopLagSeconds: 0.0031 });
  });

  it('when a gauge is missing or not a number, then that depth is left out rather than read as 0', () => {
    expect(readQueues('outbox_backlog_events NaN\nwebsocket_buffered_bytes\n')).toEqual({});
  });
});

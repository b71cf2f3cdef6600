import { useEffect, useState } from 'preact/hooks';
import { metricsText } from '../api';
import { formatAge } from '../format';
import type { LiveState } from '../live';
import { healthOf, parseMetrics, type Health } from '../metrics';

const POLL_MS = 5000;

type Tone = 'ok' | 'warn' | 'bad' | 'off';

/** The pipeline beside the orders: outbox backlog and age, broker, change log and WebSocket clients, from /metrics. */
export function HealthPanel({ live }: { live: LiveState }) {
  const [health, setHealth] = useState<Health>();
  const [error, setError] = useState<string>();

  useEffect(() => {
    let timer: number | undefined;
    let stopped = false;
    const poll = async () => {
      try {
        setHealth(healthOf(parseMetrics(await metricsText())));
        setError(undefined);
      } catch (e) {
        setError(e instanceof Error ? e.message : String(e));
      }
      if (!stopped) timer = window.setTimeout(() => void poll(), POLL_MS);
    };
    void poll();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
    // Polled again at once when the page's own socket comes or goes: the client count just changed.
  }, [live]);

  const h = health ?? {};
  const backlogTone: Tone = h.backlog === undefined ? 'off' : h.backlog === 0 ? 'ok' : (h.oldestAgeSeconds ?? 0) > 10 ? 'bad' : 'warn';
  return (
    <section class="panel" aria-labelledby="health-title" data-testid="health">
      <div class="panel-head">
        <h2 id="health-title">Pipeline</h2>
        <span class="muted small">{h.role ? `this instance: ${h.role}` : ''}</span>
      </div>
      {error && <p class="muted small">Metrics unavailable: {error}</p>}
      <div class="tiles">
        <Tile
          label="Outbox backlog"
          tone={backlogTone}
          value={h.backlog === undefined ? '—' : `${h.backlog} event${h.backlog === 1 ? '' : 's'}`}
          testid="backlog"
        />
        <Tile
          label="Oldest unsent"
          tone={backlogTone}
          value={h.oldestAgeSeconds === undefined ? '—' : formatAge(h.oldestAgeSeconds)}
          testid="oldest"
        />
        <Tile
          label="Broker"
          tone={h.broker === undefined ? 'off' : h.broker === 'up' ? 'ok' : h.broker === 'connecting' ? 'warn' : 'bad'}
          value={h.broker ?? '—'}
          testid="broker"
        />
        <Tile
          label="Change log"
          tone={h.changeLog === undefined ? 'off' : h.changeLog ? 'ok' : 'bad'}
          value={h.changeLog === undefined ? '—' : h.changeLog ? 'up' : 'down'}
          testid="changelog"
        />
        <Tile
          label="WebSocket clients"
          tone={h.clients === undefined ? 'off' : 'ok'}
          value={h.clients === undefined ? '—' : String(h.clients)}
          testid="clients"
        />
        <Tile label="This page" tone={live === 'live' ? 'ok' : 'warn'} value={live === 'live' ? 'live' : live} testid="page" />
      </div>
    </section>
  );
}

function Tile({ label, value, tone, testid }: { label: string; value: string; tone: Tone; testid: string }) {
  return (
    <div class={`tile tone-${tone}`} data-testid={`health-${testid}`}>
      <span class="tile-label">{label}</span>
      <span class="tile-value">{value}</span>
    </div>
  );
}

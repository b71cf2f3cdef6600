import { formatMoney } from '../format';
import type { OrderEvent } from '../types';

export type FeedEntry = { kind: 'event'; event: OrderEvent; at: number } | { kind: 'notice'; text: string; at: number };

/** Events as they arrive over the WebSocket, newest first: the pipeline's output, live. */
export function Feed({ entries, onSelect }: { entries: FeedEntry[]; onSelect: (id: number) => void }) {
  return (
    <section class="panel" aria-labelledby="feed-title">
      <div class="panel-head">
        <h2 id="feed-title">Live events</h2>
        <span class="muted small">{entries.filter((e) => e.kind === 'event').length} received</span>
      </div>
      {entries.length === 0 ? (
        <p class="muted empty">Waiting for events…</p>
      ) : (
        <ol class="feed" data-testid="feed">
          {entries.map((entry) =>
            entry.kind === 'notice' ? (
              <li key={`n${entry.at}${entry.text}`} class="feed-notice">
                {entry.text}
              </li>
            ) : (
              <li key={entry.event.id} data-event-id={entry.event.id}>
                <button type="button" class="link" onClick={() => onSelect(entry.event.order_id)}>
                  #{entry.event.order_id}
                </button>
                <span class="what">
                  {entry.event.change
                    ? `${entry.event.change.from} → ${entry.event.change.to}`
                    : `created · ${formatMoney(entry.event.order.total_price)}`}
                </span>
                <span class="muted small">{new Date(entry.at).toLocaleTimeString()}</span>
              </li>
            ),
          )}
        </ol>
      )}
    </section>
  );
}

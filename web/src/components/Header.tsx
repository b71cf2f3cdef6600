import type { LiveState } from '../live';

const LABEL: Record<LiveState, string> = { connecting: 'Connecting', live: 'Live', reconnecting: 'Reconnecting' };

export function Header({ live, hasKey, onKey }: { live: { state: LiveState; detail: string }; hasKey: boolean; onKey: () => void }) {
  return (
    <header class="topbar">
      <div class="brand">
        <span class="logo" aria-hidden="true" />
        <h1>Orders console</h1>
      </div>
      <div class="topbar-actions">
        <span
          class={`pill pill-${live.state}`}
          role="status"
          aria-live="polite"
          data-testid="connection"
          data-state={live.state}
          title={live.detail}
        >
          <span class="dot" aria-hidden="true" />
          {LABEL[live.state]}
          {live.detail && live.state !== 'live' && <span class="pill-detail"> · {live.detail}</span>}
        </span>
        <button type="button" class="ghost" onClick={onKey}>
          {hasKey ? 'API key ✓' : 'API key'}
        </button>
      </div>
    </header>
  );
}

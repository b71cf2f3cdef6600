import { apiKey, lastEvent } from './session';
import type { OrderEvent } from './types';

export type LiveState = 'connecting' | 'live' | 'reconnecting';

export interface LiveHandlers {
  onEvent(event: OrderEvent): void;
  onState(state: LiveState, detail: string): void;
  /** Connected again after a cut: `after` is the last event the page had, replayed from there. */
  onResume(after: string): void;
  /** The server no longer keeps the last event seen: the page must reload what it shows. */
  onGap(): void;
}

export interface Live {
  /** Reconnects now (a new key, say). */
  restart(): void;
  stop(): void;
}

/** The server's close code for an `after` it does not keep (docs/events.md: resume, or start afresh). */
const UNKNOWN_EVENT = 4404;
const MAX_DELAY_MS = 10_000;

/**
 * /ws/notifications with a visible state. After any cut it reconnects with `?after=<last event id>`, so
 * the server replays exactly what the page missed; the id survives a reload (sessionStorage).
 */
export function startLive(handlers: LiveHandlers): Live {
  let socket: WebSocket | undefined;
  let attempts = 0;
  let timer: number | undefined;
  let stopped = false;

  const url = (): string => {
    const params = new URLSearchParams();
    const after = lastEvent.get();
    if (after) params.set('after', after);
    const key = apiKey.get();
    if (key) params.set('access_token', key);
    const query = params.toString();
    return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/notifications${query ? `?${query}` : ''}`;
  };

  function connect(): void {
    clearTimeout(timer);
    const after = lastEvent.get();
    handlers.onState(attempts === 0 ? 'connecting' : 'reconnecting', after ? 'catching up' : 'connecting');
    const ws = new WebSocket(url());
    socket = ws;
    ws.onopen = () => {
      attempts = 0;
      handlers.onState('live', after ? 'caught up from the last event seen' : 'receiving events');
      if (after) handlers.onResume(after);
    };
    ws.onmessage = (message) => {
      const event = JSON.parse(String(message.data)) as OrderEvent;
      lastEvent.set(event.id);
      handlers.onEvent(event);
    };
    ws.onclose = (close) => {
      if (socket !== ws || stopped) return;
      socket = undefined;
      if (close.code === UNKNOWN_EVENT) {
        lastEvent.set(undefined);
        handlers.onGap();
      }
      attempts += 1;
      const delay = close.code === UNKNOWN_EVENT ? 0 : Math.min(MAX_DELAY_MS, 500 * 2 ** Math.min(attempts - 1, 5));
      handlers.onState('reconnecting', delay ? `retrying in ${Math.ceil(delay / 1000)} s` : 'retrying');
      timer = window.setTimeout(connect, delay);
    };
  }

  connect();
  return {
    restart() {
      const old = socket;
      socket = undefined;
      old?.close();
      attempts = 0;
      connect();
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      socket?.close();
    },
  };
}

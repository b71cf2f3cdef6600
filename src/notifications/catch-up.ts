import type { OrderEvent } from '../events/envelope.js';
import type { LogPosition } from '../events/log-position.js';
import type { Client } from './client.js';
import { toOutgoing, type Outgoing } from './frame.js';
import type { EventLedger } from './ledger.js';

/** What a client that saw an event lacks: the events after it in log order, and where it stands (when known). */
export interface Replay {
  readonly events: OrderEvent[];
  readonly from?: LogPosition;
}

/** The replay after `eventId`; undefined when that id is unknown (e.g. cleaned up). */
export type ReplayAfter = (eventId: string) => Promise<Replay | undefined>;

export const CLOSE_UNKNOWN_EVENT = 4404;

export interface CatchUpLog {
  warn(obj: object, msg: string): void;
}

/**
 * Sends a resuming client what it missed, then the live events that arrived meanwhile, then hands it
 * to the live stream: no gap, because the client was registered (buffering) before the replay was read;
 * no duplicate, because ids already replayed are skipped in the buffer and later live, and so is anything at or before
 * the client's last event in the log (a restarted relay ships again from its checkpoint, even while the replay is read).
 */
export async function catchUp(
  client: Client,
  after: string,
  replayAfter: ReplayAfter,
  ledger: EventLedger,
  log: CatchUpLog,
): Promise<void> {
  const backlog: Outgoing[] = [];
  client.backlog = backlog;

  let replayed: Replay | undefined;
  try {
    replayed = await replayAfter(after);
  } catch (err) {
    log.warn({ err, after }, 'notification replay failed');
    client.closeWith(1011, 'replay failed; try again later');
    return;
  }
  // A client that left meanwhile needs no check here: closing it again does nothing, and its first write fails.
  if (replayed === undefined) {
    client.closeWith(CLOSE_UNKNOWN_EVENT, `unknown event id in after: ${after}; reconnect without after`);
    return;
  }
  // A relay that restarts ships again from its checkpoint: what is at or before `after`, the client had.
  client.floor = replayed.from;

  const replay = replayed.events.filter((event) => client.matches(event.order_id, event.order.client_email.toLowerCase()));
  const replayedIds = new Set(replay.map((event) => event.id));
  for (const event of replay) {
    if (!(await client.writePaced(toOutgoing(event)))) return;
  }
  // The backlog keeps growing while we await, so its length is read on every turn.
  for (let i = 0; i < backlog.length; i++) {
    const out = backlog[i] as Outgoing;
    if (replayedIds.has(out.event.id) || client.hadBefore(out)) continue;
    if (!(await client.writePaced(out))) return;
  }

  client.backlog = undefined;
  for (const event of replay) {
    if (!ledger.hasPassed(event.order_id, event.sequence, event.id)) {
      client.replayed.set(event.id, { orderId: event.order_id, sequence: event.sequence });
    }
  }
}

/**
 * A place in the order event log (src/outbox/store.ts says why this order is exact): the writing
 * transaction's xid8, then the row's position.
 */
export interface LogPosition {
  readonly xid: string;
  readonly position: number;
}

export const LOG_START: LogPosition = { xid: '0', position: 0 };

/** As carried beside an event on the broker (`x-log-position`): `xid:position`. */
export function formatPosition(at: LogPosition): string {
  return `${at.xid}:${at.position}`;
}

export function parsePosition(text: unknown): LogPosition | undefined {
  const match = typeof text === 'string' ? /^(\d{1,20}):(\d{1,18})$/.exec(text) : null;
  return match ? { xid: match[1]!, position: Number(match[2]) } : undefined;
}

export function comparePositions(a: LogPosition, b: LogPosition): number {
  // Number() of a bigint keeps its sign however far it rounds.
  const byXid = Math.sign(Number(BigInt(a.xid) - BigInt(b.xid)));
  return byXid === 0 ? Math.sign(a.position - b.position) : byXid;
}

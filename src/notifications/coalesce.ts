import type { Duplex } from 'node:stream';

/**
 * Holds the frames written to a socket until the event loop's check phase, then sends them in one write.
 * Events that arrive together (a batch from the broker, a backlog) then cost one system call per client,
 * not one per event per client: the fan-out gets cheaper per event exactly when it falls behind.
 */
export interface WriteCoalescer {
  /** Call before writing to the socket: its writes are held until the next flush. */
  hold(socket: Duplex): void;
  /** Bytes written to the socket since it was held: they wait for the flush, not for the peer. */
  heldBytes(socket: Duplex): number;
  /** Sends what the socket holds now, before the flush. */
  release(socket: Duplex): void;
  /** Sockets whose writes are held right now. */
  held(): number;
}

export function createWriteCoalescer(schedule: (flush: () => void) => void = setImmediate): WriteCoalescer {
  /** Each held socket, with the bytes it had waiting for its peer when it was held. */
  const sockets = new Map<Duplex, number>();
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    const held = [...sockets.keys()];
    sockets.clear();
    for (const socket of held) socket.uncork();
  };
  return {
    hold(socket) {
      if (sockets.has(socket)) return;
      socket.cork();
      sockets.set(socket, socket.writableLength);
      if (scheduled) return;
      scheduled = true;
      schedule(flush);
    },
    release(socket) {
      if (!sockets.delete(socket)) return;
      socket.uncork();
    },
    heldBytes(socket) {
      const waiting = sockets.get(socket);
      return waiting === undefined ? 0 : socket.writableLength - waiting;
    },
    held: () => sockets.size,
  };
}

import type { Duplex } from 'node:stream';

/**
 * Holds the frames written to a socket until the event loop's check phase, then sends them in one write.
 * Events that arrive together (a batch from the broker, a backlog) then cost one system call per client,
 * not one per event per client: the fan-out gets cheaper per event exactly when it falls behind.
 */
export interface WriteCoalescer {
  /** Writes the frame to the socket, held until the next flush. */
  send(socket: Duplex, frame: Buffer): void;
  /** Bytes sent through `send` that wait for the flush (not for the peer). */
  heldBytes(socket: Duplex): number;
  /** Sends what the socket holds now, before the flush. */
  release(socket: Duplex): void;
  /** Sockets whose writes are held right now. */
  held(): number;
}

export function createWriteCoalescer(schedule: (flush: () => void) => void = setImmediate): WriteCoalescer {
  /** Each held socket, with the bytes held for it. */
  const sockets = new Map<Duplex, number>();
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    const held = [...sockets.keys()];
    sockets.clear();
    for (const socket of held) socket.uncork();
  };
  return {
    send(socket, frame) {
      const held = sockets.get(socket);
      if (held === undefined) {
        socket.cork();
        if (!scheduled) {
          scheduled = true;
          schedule(flush);
        }
      }
      sockets.set(socket, (held ?? 0) + frame.length);
      socket.write(frame);
    },
    heldBytes: (socket) => sockets.get(socket) ?? 0,
    release(socket) {
      if (!sockets.delete(socket)) return;
      socket.uncork();
    },
    held: () => sockets.size,
  };
}

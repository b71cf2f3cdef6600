import * as ws from 'ws';
import type { OrderEvent } from '../events/envelope.js';
import { parsePosition, type LogPosition } from '../events/log-position.js';

interface FrameOptions {
  fin: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
  rsv1: boolean;
}

export interface SenderStatics {
  frame(data: Buffer, options: FrameOptions): Buffer[];
}

/** ws's Sender, which its ESM wrapper exports but @types/ws does not declare; throws when a ws release no longer has it. */
export function senderOf(module: unknown): SenderStatics {
  const exported = (module as { Sender?: Partial<SenderStatics> } | undefined)?.Sender;
  if (!exported || typeof exported.frame !== 'function') throw new Error('ws no longer exports Sender.frame; notifications need it');
  return exported as SenderStatics;
}

// Fails at start-up, not on the first broadcast.
const Sender = senderOf(ws);

const TEXT_OPCODE = 0x1;

/** One event ready to send: serialized and framed once, shared by every client that gets it. */
export interface Outgoing {
  readonly event: OrderEvent;
  readonly payload: Buffer;
  /** A complete unmasked text frame (header + payload). */
  readonly frame: Buffer;
  /** `order.client_email` lower-cased once, for the case-insensitive filter. */
  readonly emailKey: string;
  /** Its place in the log, when the broker carried it. */
  readonly position: LogPosition | undefined;
}

export function toOutgoing(event: OrderEvent, body?: Buffer, logPosition?: string): Outgoing {
  const payload = body ?? Buffer.from(JSON.stringify(event));
  const frame = Buffer.concat(
    Sender.frame(payload, {
      fin: true,
      opcode: TEXT_OPCODE,
      mask: false,
      // Stryker disable next-line BooleanLiteral: readOnly only matters when masking, and a server never masks
      readOnly: true,
      rsv1: false,
    }),
  );
  return { event, payload, frame, emailKey: event.order.client_email.toLowerCase(), position: parsePosition(logPosition) };
}

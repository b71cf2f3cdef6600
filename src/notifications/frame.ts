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

interface SenderStatics {
  frame(data: Buffer, options: FrameOptions): Buffer[];
}

// ws exports its Sender (the ESM wrapper names it) but @types/ws does not declare it.
const exported = (ws as unknown as { Sender?: SenderStatics }).Sender;
// Fail at start-up, not on the first broadcast, if a ws upgrade ever stops exporting it.
if (!exported || typeof exported.frame !== 'function') throw new Error('ws no longer exports Sender.frame; notifications need it');
const Sender: SenderStatics = exported;

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
  // Stryker disable next-line BooleanLiteral: readOnly only matters when masking (ws copies the data before masking it); a server frame is never masked
  const frame = Buffer.concat(Sender.frame(payload, { fin: true, opcode: TEXT_OPCODE, mask: false, readOnly: true, rsv1: false }));
  return { event, payload, frame, emailKey: event.order.client_email.toLowerCase(), position: parsePosition(logPosition) };
}

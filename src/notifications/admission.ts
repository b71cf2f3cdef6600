import type { FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';

export interface ConnectionLimits {
  /** Open sockets per process; 0 = no cap. */
  total: number;
  /** Open sockets per caller (key, or address when there is none); 0 = no cap. */
  perCaller: number;
}

export interface Admission {
  /** Holds a slot for the request's connection until it closes, or refuses with 429/503 before the handshake. */
  admit(request: FastifyRequest, caller: string): void;
  /** Callers holding at least one socket: one entry each, gone when their last socket closes. */
  callers(): number;
}

/** Counts connections from admission until the TCP connection closes, however it ends (handshake or not). */
export function createAdmission(limits: ConnectionLimits): Admission {
  const perCaller = new Map<string, number>();
  let total = 0;
  return {
    admit(request, caller) {
      const held = perCaller.get(caller) ?? 0;
      if (limits.perCaller > 0 && held >= limits.perCaller) {
        throw new ApiError(
          'too_many_connections',
          `This caller already holds ${held} WebSocket connections, the most it may; close one first.`,
        );
      }
      if (limits.total > 0 && total >= limits.total) {
        throw new ApiError(
          'connection_limit_reached',
          'This instance holds all the WebSocket connections it takes; retry later or on another instance.',
        );
      }
      perCaller.set(caller, held + 1);
      total += 1;
      request.raw.socket.once('close', () => {
        total -= 1;
        const left = (perCaller.get(caller) ?? 1) - 1;
        if (left > 0) perCaller.set(caller, left);
        else perCaller.delete(caller);
      });
    },
    callers: () => perCaller.size,
  };
}

/** What ws would refuse with a bare 400, refused here first as problem+json (RFC 6455 §4.2.1; ws takes versions 8 and 13). */
export function checkHandshake(request: FastifyRequest): void {
  const { upgrade, 'sec-websocket-key': key, 'sec-websocket-version': version } = request.headers;
  const problems = [
    upgrade?.toLowerCase() === 'websocket' ? undefined : 'Upgrade must be websocket',
    key !== undefined && /^[+/0-9A-Za-z]{22}==$/.test(key) ? undefined : 'Sec-WebSocket-Key must be 16 bytes in base64',
    version === '13' || version === '8' ? undefined : 'Sec-WebSocket-Version must be 13',
  ].filter((p) => p !== undefined);
  if (problems.length > 0) throw new ApiError('bad_upgrade_request', `${problems.join('; ')}.`);
}

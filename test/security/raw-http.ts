import { once } from 'node:events';
import net from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Whether the server ended the connection by itself within the wait after answering. */
  closedByServer: boolean;
}

export interface RawRequestOptions {
  /** How long to wait, after the answer, for the server to close the connection (default 0: close it ourselves). */
  waitForCloseMs?: number;
  timeoutMs?: number;
}

/**
 * Sends bytes exactly as given over a fresh TCP connection and reads one HTTP/1.1 answer, so request-line
 * tricks (percent-encoding, `#`, absolute form, double slashes) reach the server as an attacker sends them.
 */
export async function rawRequest(port: number, request: string, options: RawRequestOptions = {}): Promise<RawResponse> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  let buffer = Buffer.alloc(0);
  let ended = false;
  const changed = new EventTarget();
  socket.on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    changed.dispatchEvent(new Event('change'));
  });
  socket.on('close', () => {
    ended = true;
    changed.dispatchEvent(new Event('change'));
  });
  socket.write(request);
  const bodiless = request.startsWith('HEAD ');
  try {
    const deadline = Date.now() + (options.timeoutMs ?? 5000);
    let parsed = parse(buffer, ended, bodiless);
    while (!parsed) {
      if (ended) throw new Error(`the server closed the connection without a complete answer: ${JSON.stringify(buffer.toString())}`);
      if (Date.now() > deadline) throw new Error(`no complete answer within the timeout: ${JSON.stringify(buffer.toString())}`);
      await waitForChange(changed, deadline - Date.now());
      parsed = parse(buffer, ended, bodiless);
    }
    const closeDeadline = Date.now() + (options.waitForCloseMs ?? 0);
    while (!ended && Date.now() < closeDeadline) await waitForChange(changed, closeDeadline - Date.now());
    return { ...parsed, closedByServer: ended };
  } finally {
    socket.destroy();
  }
}

function waitForChange(target: EventTarget, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, Math.max(ms, 0));
    function done() {
      clearTimeout(timer);
      target.removeEventListener('change', done);
      resolve();
    }
    target.addEventListener('change', done);
  });
}

function parse(buffer: Buffer, ended: boolean, bodiless: boolean): Omit<RawResponse, 'closedByServer'> | undefined {
  const end = buffer.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const [statusLine, ...lines] = buffer.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1]);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    headers[name] = headers[name] === undefined ? line.slice(colon + 1).trim() : `${headers[name]}, ${line.slice(colon + 1).trim()}`;
  }
  const rest = buffer.subarray(end + 4);
  if (bodiless || status === 101 || status === 204 || status === 304) return { status, headers, body: '' };
  if (headers['content-length'] !== undefined) {
    const length = Number(headers['content-length']);
    return rest.length >= length ? { status, headers, body: rest.subarray(0, length).toString() } : undefined;
  }
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const body = dechunk(rest);
    return body === undefined ? undefined : { status, headers, body };
  }
  return ended ? { status, headers, body: rest.toString() } : undefined;
}

function dechunk(data: Buffer): string | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at);
    if (lineEnd === -1) return undefined;
    const size = parseInt(data.subarray(at, lineEnd).toString(), 16);
    if (size === 0) return Buffer.concat(parts).toString();
    if (data.length < lineEnd + 2 + size + 2) return undefined;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
}

/** A request as text: the request line as given, a Host header, optional headers and JSON body, Connection: close. */
export function requestText(method: string, target: string, port: number, headers: Record<string, string> = {}, body?: unknown): string {
  const payload = body === undefined ? '' : JSON.stringify(body);
  const all: Record<string, string> = {
    host: `127.0.0.1:${port}`,
    connection: 'close',
    ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) }),
    ...headers,
  };
  return `${method} ${target} HTTP/1.1\r\n${Object.entries(all).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${payload}`;
}

/** The headers of a WebSocket handshake, for upgrade attempts written by hand. */
export function upgradeHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return {
    connection: 'Upgrade',
    upgrade: 'websocket',
    'sec-websocket-version': '13',
    'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
    ...extra,
  };
}

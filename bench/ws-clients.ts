/**
 * A separate process holding many WebSocket clients, driven by the bench over IPC. The clients are the
 * load generator's half of the machine, so they are lean: a plain TCP socket after the upgrade, frames
 * parsed in place, no copy per message. Each envelope's send time travels in its client_name
 * ("Bench client <seq> @<epoch ms>"), so latency is measured here the moment a frame arrives, even
 * when the event overtakes the POST's response.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { Socket } from 'node:net';
import type { FleetCommand, FleetReply } from './fleet.js';
import { Samples } from './stats.js';

const MARKER = Buffer.from('Bench client ');
const now = () => performance.timeOrigin + performance.now();

const sockets = new Set<Socket>();
let closing = false;
let failed = 0;
let unexpectedCloses = 0;
let received = 0;
let duplicates = 0;
let checked = 0;
const problems: string[] = [];
let measureFrom = Infinity;
let perSeq = new Uint16Array(0);
/** The slowest client's latency for each order, to see when in the run the tail happened. */
let perSeqWorst = new Float32Array(0);
let perSeqSentAt = new Float64Array(0);
let latencies = new Samples(1024);

function problem(message: string): void {
  if (problems.length < 10) problems.push(message);
}

/** One text frame's payload, `buf[start, end)`: the marker gives the order and its send time. */
function onEnvelope(seen: Uint8Array, buf: Buffer, start: number, end: number, at: number): void {
  received += 1;
  const m = buf.indexOf(MARKER, start);
  let seq = -1;
  let sentAt = NaN;
  if (m >= 0 && m < end) {
    const match = /^(\d+) @([\d.]+)/.exec(buf.toString('latin1', m + MARKER.length, Math.min(end, m + MARKER.length + 40)));
    if (match) {
      seq = Number(match[1]);
      sentAt = Number(match[2]);
    }
  }
  if (seq < 0 || seq >= seen.length) return problem(`unexpected frame ${buf.toString('utf8', start, Math.min(end, start + 200))}`);
  // A full check of a sample of envelopes; the marker alone for the rest.
  if (received % 997 === 1) {
    checked += 1;
    const e = JSON.parse(buf.toString('utf8', start, end)) as {
      type?: string;
      schema_version?: number;
      sequence?: number;
      order_id?: number;
      order?: { id?: number; client_name?: string };
    };
    if (
      e.type !== 'order.created' ||
      e.schema_version !== 1 ||
      e.sequence !== 1 ||
      e.order?.id !== e.order_id ||
      !e.order?.client_name?.startsWith(`Bench client ${seq} @`)
    ) {
      problem(`unexpected envelope ${buf.toString('utf8', start, Math.min(end, start + 300))}`);
    }
  }
  if (seen[seq]) {
    duplicates += 1;
    return;
  }
  seen[seq] = 1;
  perSeq[seq] = (perSeq[seq] ?? 0) + 1;
  perSeqSentAt[seq] = sentAt;
  if (at - sentAt > (perSeqWorst[seq] ?? 0)) perSeqWorst[seq] = at - sentAt;
  if (sentAt >= measureFrom) latencies.add(at - sentAt);
}

/** A masked control frame (clients must mask; a zero key leaves the payload as it is). */
function controlFrame(opcode: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length, 0, 0, 0, 0]), payload]);
}

/** Reads server frames (never masked) straight from the socket's chunks; keeps only an incomplete tail. */
function frameReader(socket: Socket, seen: Uint8Array): (chunk: Buffer) => void {
  let pending: Buffer | undefined;
  return (chunk) => {
    const at = now();
    const buf = pending ? Buffer.concat([pending, chunk]) : chunk;
    pending = undefined;
    let i = 0;
    while (buf.length - i >= 2) {
      const opcode = buf[i]! & 0x0f;
      let length = buf[i + 1]! & 0x7f;
      let header = 2;
      if (length === 126) {
        if (buf.length - i < 4) break;
        length = buf.readUInt16BE(i + 2);
        header = 4;
      } else if (length === 127) {
        if (buf.length - i < 10) break;
        length = Number(buf.readBigUInt64BE(i + 2));
        header = 10;
      }
      if (buf.length - i < header + length) break;
      const start = i + header;
      const end = start + length;
      if (opcode === 0x1) onEnvelope(seen, buf, start, end, at);
      else if (opcode === 0x9) socket.write(controlFrame(0xa, buf.subarray(start, end)));
      else if (opcode === 0x8) socket.end(controlFrame(0x8, buf.subarray(start, Math.min(end, start + 2))));
      else problem(`unexpected frame opcode ${opcode}`);
      i = end;
    }
    if (i < buf.length) pending = Buffer.from(buf.subarray(i));
  };
}

function openOne(url: string, capacity: number): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const req = request(url.replace(/^ws/, 'http'), {
      agent: false,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
      },
    });
    req.once('error', () => resolve(undefined));
    req.once('response', (res) => {
      res.resume();
      resolve(undefined);
    });
    req.once('upgrade', (res, socket, head) => {
      if (res.statusCode !== 101) return resolve(undefined);
      socket.setNoDelay(true);
      const read = frameReader(socket, new Uint8Array(capacity));
      if (head.length > 0) read(head);
      socket.on('data', read);
      socket.on('error', () => undefined);
      socket.once('close', () => {
        sockets.delete(socket);
        if (!closing) unexpectedCloses += 1;
      });
      sockets.add(socket);
      resolve(socket);
    });
    req.end();
  });
}

async function connect(url: string, count: number, concurrency: number, capacity: number): Promise<FleetReply> {
  const started = performance.now();
  let next = 0;
  let opened = 0;
  const worker = async () => {
    while (next < count) {
      next += 1;
      if (await openOne(url, capacity)) opened += 1;
      else failed += 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { open: opened, failed, ms: performance.now() - started };
}

/** For each second of the measured schedule, the worst latency any client saw (ms). */
function worstBySecond(): number[] {
  const out: number[] = [];
  for (let seq = 0; seq < perSeqSentAt.length; seq++) {
    const sentAt = perSeqSentAt[seq]!;
    if (!(sentAt >= measureFrom)) continue;
    const second = Math.floor((sentAt - measureFrom) / 1000);
    out[second] = Math.max(out[second] ?? 0, Math.round(perSeqWorst[seq]!));
  }
  return Array.from(out, (v) => v ?? 0);
}

async function handle(command: FleetCommand): Promise<FleetReply> {
  switch (command.cmd) {
    case 'connect':
      perSeq = new Uint16Array(command.capacity);
      perSeqWorst = new Float32Array(command.capacity);
      perSeqSentAt = new Float64Array(command.capacity);
      latencies = new Samples(command.capacity * command.count);
      // IPC carries JSON, where Infinity ("not measuring yet") arrives as null.
      measureFrom = Number.isFinite(command.measureFrom) ? command.measureFrom : Infinity;
      return connect(command.url, command.count, command.concurrency, command.capacity);
    case 'measure-from':
      measureFrom = command.at;
      return {};
    case 'status':
      return { open: sockets.size, received, unexpectedCloses };
    case 'report':
      return {
        open: sockets.size,
        failed,
        unexpectedCloses,
        received,
        duplicates,
        checked,
        problems,
        latency: latencies.summary(),
        perSeq: Array.from(perSeq),
        worstBySecond: worstBySecond(),
      };
    case 'close':
      closing = true;
      for (const socket of sockets) socket.destroy();
      setImmediate(() => process.exit(0));
      return {};
  }
}

process.on('message', (message: FleetCommand & { id: number }) => {
  void handle(message).then(
    (reply) => process.send!({ id: message.id, ...reply }),
    (err: unknown) => process.send!({ id: message.id, error: String(err) }),
  );
});
process.on('disconnect', () => process.exit(0));

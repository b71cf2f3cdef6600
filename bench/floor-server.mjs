// The floors the bench holds the service against, each a process with none of the service in it:
//   fanout  POST /orders/ answers 201 with the order and sends its envelope to every WebSocket client
//           (no database, no broker: what HTTP in and WebSocket fan-out alone cost on this machine);
//   pglite  opens PGlite on DATA_DIR, then answers /readyz (the least an embedded start must do);
//   pg-get  GET /orders/{id} runs FLOOR_SQL (the service's own read statement) on a pg pool of FLOOR_POOL_SIZE
//           connections to FLOOR_DATABASE_URL and answers its JSON: what node:http plus the pg driver cost.
//   postgresjs-get  the same through postgres.js instead of pg.
import { Buffer } from 'node:buffer';
import console from 'node:console';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import path from 'node:path';
import process from 'node:process';
import { setImmediate } from 'node:timers';
import { Sender, WebSocketServer } from 'ws';

const mode = process.argv[2];
const port = Number(process.env.PORT);

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

async function fanout() {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 4096 });
  const sockets = new Set();
  let lastId = 0;
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/readyz') return send(res, 200, '{"status":"ready"}');
    if (req.method !== 'POST' || !req.url.startsWith('/orders')) return send(res, 404, '{}');
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (c) => (text += c));
    req.on('end', () => {
      const input = JSON.parse(text);
      const now = new Date().toISOString();
      const cents = 1999 * input.quantity;
      const order = {
        id: ++lastId,
        product_id: input.product_id,
        quantity: input.quantity,
        client_name: input.client_name,
        client_email: input.client_email,
        status: 'Pending',
        total_price: cents / 100,
        unit_price: 19.99,
        created_at: now,
        updated_at: now,
        version: 1,
      };
      send(res, 201, JSON.stringify(order), { location: `/orders/${order.id}` });
      const envelope = {
        id: randomUUID(),
        type: 'order.created',
        schema_version: 1,
        occurred_at: now,
        order_id: order.id,
        sequence: 1,
        order,
      };
      // As the service's hub does it: framed once, written raw to each socket.
      const frame = Buffer.concat(
        Sender.frame(Buffer.from(JSON.stringify(envelope)), { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false }),
      );
      setImmediate(() => {
        for (const ws of sockets) ws._socket.write(frame);
      });
    });
  });
  server.on('upgrade', (req, socket, head) => {
    if (!req.url.startsWith('/ws/notifications')) return socket.destroy();
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      ws.on('close', () => sockets.delete(ws));
      ws.on('error', () => ws.terminate());
    });
  });
  return server;
}

async function pglite() {
  const { PGlite } = await import('@electric-sql/pglite');
  const db = await PGlite.create(path.join(process.env.DATA_DIR, 'pglite'));
  await db.query('SELECT 1');
  return createServer((req, res) => send(res, req.url === '/readyz' ? 200 : 404, '{}'));
}

async function pgGet() {
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({ connectionString: process.env.FLOOR_DATABASE_URL, max: Number(process.env.FLOOR_POOL_SIZE) });
  const text = process.env.FLOOR_SQL;
  return createServer((req, res) => {
    if (req.url === '/readyz') return send(res, 200, '{"status":"ready"}');
    const id = /^\/orders\/(\d+)$/.exec(req.url)?.[1];
    if (req.method !== 'GET' || !id) return send(res, 404, '{}');
    pool.query({ text, values: [Number(id)], name: 'get_order' }).then(
      ({ rows }) => (rows[0] ? send(res, 200, rows[0].json, { etag: `"${rows[0].version}"` }) : send(res, 404, '{}')),
      (err) => send(res, 500, JSON.stringify({ error: err.message })),
    );
  });
}

// The same read through postgres.js (the `postgres` package), which pipelines statements on each connection
// and keeps them prepared: how much of the GET floor is the pg driver's (issue 12: measure pg against postgres).
async function postgresjsGet() {
  const { default: postgres } = await import('postgres');
  const sql = postgres(process.env.FLOOR_DATABASE_URL, { max: Number(process.env.FLOOR_POOL_SIZE), prepare: true, onnotice: () => {} });
  const text = process.env.FLOOR_SQL;
  return createServer((req, res) => {
    if (req.url === '/readyz') return send(res, 200, '{"status":"ready"}');
    const id = /^\/orders\/(\d+)$/.exec(req.url)?.[1];
    if (req.method !== 'GET' || !id) return send(res, 404, '{}');
    sql.unsafe(text, [Number(id)], { prepare: true }).then(
      (rows) => (rows[0] ? send(res, 200, rows[0].json, { etag: `"${rows[0].version}"` }) : send(res, 404, '{}')),
      (err) => send(res, 500, JSON.stringify({ error: err.message })),
    );
  });
}

const modes = { fanout, pglite, 'pg-get': pgGet, 'postgresjs-get': postgresjsGet };
const server = await modes[mode]?.();
if (!server) {
  console.error(`usage: floor-server.mjs ${Object.keys(modes).join('|')} (got ${mode})`);
  process.exit(2);
}
server.listen(port, '127.0.0.1');
process.once('SIGTERM', () => process.exit(0));

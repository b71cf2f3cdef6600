import net from 'node:net';
import { BSON, type Document } from 'mongodb';

const OP_REPLY = 1;
const OP_QUERY = 2004;
const OP_MSG = 2013;

/** The first BSON document of an OP_QUERY or OP_MSG body: the command. */
function commandOf(opCode: number, body: Buffer): Document {
  if (opCode === OP_MSG) return BSON.deserialize(body.subarray(5)); // flagBits, then a kind-0 section
  if (opCode !== OP_QUERY) throw new Error(`unexpected op code ${opCode}`);
  const nameEnd = body.indexOf(0, 4); // flags, then the collection name as a C string
  return BSON.deserialize(body.subarray(nameEnd + 9)); // skip, return counts
}

function reply(opCode: number, requestId: number, document: Document): Buffer {
  const doc = BSON.serialize(document);
  const body =
    opCode === OP_MSG
      ? Buffer.concat([Buffer.alloc(4), Buffer.from([0]), doc])
      : Buffer.concat([Buffer.alloc(4), Buffer.alloc(8), Buffer.alloc(4), Buffer.from([1, 0, 0, 0]), doc]);
  const header = Buffer.alloc(16);
  header.writeInt32LE(16 + body.length, 0);
  header.writeInt32LE(requestId + 1_000_000, 4);
  header.writeInt32LE(requestId, 8);
  header.writeInt32LE(opCode === OP_MSG ? OP_MSG : OP_REPLY, 12);
  return Buffer.concat([header, body]);
}

const HELLO = { ismaster: true, isWritablePrimary: true, helloOk: true, maxWireVersion: 21, minWireVersion: 0, maxBsonObjectSize: 16_777_216, maxMessageSizeBytes: 48_000_000, maxWriteBatchSize: 100_000, logicalSessionTimeoutMinutes: 30, connectionId: 1, ok: 1 };

/**
 * A standalone MongoDB as the driver sees it on the wire (the real one cannot run here): it answers
 * the handshake and heartbeats; while `answering` it answers `ping` and refuses every other command,
 * otherwise it answers none, as a server that stalls after connecting. It records the commands it
 * receives and how many connections are open.
 */
export async function startFakeMongod() {
  const sockets = new Set<net.Socket>();
  const commands: Document[] = [];
  const state = { answering: true };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 16 && pending.length >= pending.readInt32LE(0)) {
        const length = pending.readInt32LE(0);
        const requestId = pending.readInt32LE(4);
        const opCode = pending.readInt32LE(12);
        const command = commandOf(opCode, pending.subarray(16, length));
        pending = pending.subarray(length);
        const name = Object.keys(command)[0];
        if (name === 'ismaster' || name === 'isMaster' || name === 'hello') {
          socket.write(reply(opCode, requestId, { ...HELLO, localTime: new Date() }));
          continue;
        }
        commands.push(command);
        if (!state.answering || name === 'endSessions') continue;
        if (name === 'ping') socket.write(reply(opCode, requestId, { ok: 1 }));
        else socket.write(reply(opCode, requestId, { ok: 0, errmsg: `no such command: '${name}'`, code: 59, codeName: 'CommandNotFound' }));
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    url: `mongodb://127.0.0.1:${(server.address() as net.AddressInfo).port}/?directConnection=true`,
    commands,
    state,
    connections: () => sockets.size,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

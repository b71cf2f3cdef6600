import net from 'node:net';

/**
 * A TCP proxy in front of RabbitMQ that can also send the client a frame of its own, as the server
 * would: for server-initiated methods that cannot be provoked on demand (flow control).
 */
export interface FrameInjector {
  readonly port: number;
  /** Writes a connection-level (channel 0) method frame to every client; call it while the link is idle. */
  sendMethod(classId: number, methodId: number, args?: Buffer): void;
  /** Drops every client connection, as a failed network would; new ones are still let through. */
  cut(): void;
  close(): Promise<void>;
}

export async function startFrameInjector(target: { host: string; port: number }): Promise<FrameInjector> {
  const clients = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target);
    clients.add(client);
    client.pipe(upstream).pipe(client);
    const end = (): void => {
      clients.delete(client);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    sendMethod(classId, methodId, args = Buffer.alloc(0)) {
      for (const client of clients) client.write(methodFrame(classId, methodId, args));
    },
    cut() {
      for (const client of clients) client.destroy();
    },
    async close() {
      for (const client of clients) client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** An AMQP short string: a length byte, then the bytes. */
export function shortString(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  return Buffer.concat([Buffer.from([bytes.length]), bytes]);
}

/** A connection-level (channel 0) method frame, as the server would send it. */
export function methodFrame(classId: number, methodId: number, args: Buffer = Buffer.alloc(0)): Buffer {
  const payload = Buffer.alloc(4 + args.length);
  payload.writeUInt16BE(classId, 0);
  payload.writeUInt16BE(methodId, 2);
  args.copy(payload, 4);
  const header = Buffer.alloc(7);
  header.writeUInt8(1, 0); // method frame
  header.writeUInt16BE(0, 1); // channel 0
  header.writeUInt32BE(payload.length, 3);
  return Buffer.concat([header, payload, Buffer.from([0xce])]);
}

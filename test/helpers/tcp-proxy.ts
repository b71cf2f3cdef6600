import net from 'node:net';

/** A TCP proxy on 127.0.0.1 in front of one server, so tests can cut the network and restore it. */
export interface TcpProxy {
  /** Local port to connect to instead of the target's. */
  readonly port: number;
  /** Connections accepted so far, including those refused while cut. */
  readonly accepted: number;
  /** Resets every open connection and resets new ones at once until restore(). */
  cut(): void;
  /** Lets new connections through again. */
  restore(): void;
  /** Stops listening and destroys every connection. */
  close(): Promise<void>;
}

/** Starts a proxy to target (e.g. { host: '127.0.0.1', port: 5672 }) on a free loopback port. */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let isCut = false;
  let accepted = 0;

  const server = net.createServer((client) => {
    accepted++;
    if (isCut) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(target);
    sockets.add(client).add(upstream);
    const drop = (): void => {
      sockets.delete(client);
      sockets.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on('error', drop);
      socket.on('close', drop);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;

  const destroyAll = (): void => {
    for (const socket of sockets) socket.resetAndDestroy();
    sockets.clear();
  };

  return {
    port,
    get accepted() {
      return accepted;
    },
    cut() {
      isCut = true;
      destroyAll();
    },
    restore() {
      isCut = false;
    },
    close() {
      destroyAll();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

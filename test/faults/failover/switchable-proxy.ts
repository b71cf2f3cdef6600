import net from 'node:net';

export interface Target {
  host: string;
  port: number;
}

/** A TCP proxy on 127.0.0.1 whose target can be switched, as a virtual IP or a DNS name is moved to a promoted standby. */
export interface SwitchableProxy {
  readonly port: number;
  readonly target: Target;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** New connections go to `target`; open ones are reset, since they led to the server that is no longer behind the address. */
  switchTo(target: Target): void;
  close(): Promise<void>;
}

export async function startSwitchableProxy(initial: Target): Promise<SwitchableProxy> {
  let target = initial;
  let accepted = 0;
  const open = new Set<net.Socket>();
  const track = (socket: net.Socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  };
  const server = net.createServer((client) => {
    accepted++;
    const upstream = net.connect(target);
    track(client);
    track(upstream);
    // Either side's end or error ends both, so a dead server shows as a reset to the client at once.
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  const resetAll = () => {
    for (const socket of open) socket.resetAndDestroy();
  };
  return {
    port,
    get target() {
      return target;
    },
    get accepted() {
      return accepted;
    },
    switchTo(next) {
      target = next;
      resetAll();
    },
    async close() {
      const closed = new Promise((resolve) => server.close(resolve));
      resetAll();
      await closed;
    },
  };
}

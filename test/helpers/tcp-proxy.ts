import net from 'node:net';

/**
 * How the proxy treats traffic: `pass` forwards it; `reset` kills open connections and refuses new
 * ones (nothing listens); `blackhole` accepts connections and forwards nothing either way, open
 * ones included, as a silent partition does; `latency` forwards each chunk `latencyMs` late.
 */
export type ProxyMode = { kind: 'pass' } | { kind: 'reset' } | { kind: 'blackhole' } | { kind: 'latency'; latencyMs: number };

/** A TCP proxy on 127.0.0.1 in front of one server, so tests can cut, partition or slow the network. */
export interface TcpProxy {
  /** Local port to connect to instead of the target's. */
  readonly port: number;
  /** Connections accepted so far, including those reset at once while cut. */
  readonly accepted: number;
  /** Client connections open now. */
  readonly open: number;
  readonly mode: ProxyMode;
  /** Resets every open connection and resets new ones at once (they are accepted first) until restore(). */
  cut(): void;
  /** Resets every open connection and stops listening: new connections are refused until restore(). */
  reset(): Promise<void>;
  /**
   * Forwards nothing, on open connections too, and accepts new ones without reaching the target.
   * Neither side learns that the other closed until restore(), as across a real partition.
   */
  blackhole(): void;
  /** Delays every chunk by ms in each direction, on open connections too. */
  latency(ms: number): void;
  /** Forwards again: what was held goes through, as after a partition heals; a refused port listens again. */
  restore(): Promise<void>;
  /** Stops listening and destroys every connection. */
  close(): Promise<void>;
}

export interface TcpProxyOptions {
  /** Port to listen on; a free one when absent (or 0). */
  port?: number;
}

/** One direction of one connection: chunks wait here while the mode holds them back. */
interface Pipe {
  readonly queue: { chunk: Buffer; arrivedAt: number }[];
  to: net.Socket | undefined;
  /** The sending side closed; the receiving side is closed once the queue is through. */
  ended: boolean;
  timer?: NodeJS.Timeout;
}

interface Link {
  readonly client: net.Socket;
  upstream: net.Socket | undefined;
  readonly up: Pipe;
  readonly down: Pipe;
}

/** Starts a proxy to target (e.g. { host: '127.0.0.1', port: 5672 }) on a loopback port. */
export async function startTcpProxy(target: { host: string; port: number }, options: TcpProxyOptions = {}): Promise<TcpProxy> {
  const links = new Set<Link>();
  let mode: ProxyMode = { kind: 'pass' };
  let isCut = false;
  let accepted = 0;

  const pump = (link: Link, pipe: Pipe): void => {
    clearTimeout(pipe.timer);
    pipe.timer = undefined;
    if (mode.kind === 'blackhole' || !links.has(link)) return;
    const delay = mode.kind === 'latency' ? mode.latencyMs : 0;
    while (pipe.queue.length > 0 && pipe.to) {
      const waitMs = pipe.queue[0]!.arrivedAt + delay - performance.now();
      if (waitMs > 0) {
        pipe.timer = setTimeout(() => pump(link, pipe), waitMs);
        return;
      }
      pipe.to.write(pipe.queue.shift()!.chunk);
    }
    if (pipe.ended && pipe.queue.length === 0) drop(link);
  };

  const drop = (link: Link): void => {
    if (!links.delete(link)) return;
    for (const pipe of [link.up, link.down]) clearTimeout(pipe.timer);
    link.client.destroy();
    link.upstream?.destroy();
  };

  const attach = (link: Link, socket: net.Socket, pipe: Pipe): void => {
    socket.on('data', (chunk: Buffer) => {
      pipe.queue.push({ chunk, arrivedAt: performance.now() });
      if (pipe.queue.length === 1) pump(link, pipe);
    });
    // Bytes sent before a close still arrive, and the other side hears of it only as the network allows.
    const ended = (): void => {
      pipe.ended = true;
      pump(link, pipe);
    };
    socket.on('error', ended);
    socket.on('close', ended);
  };

  const openUpstream = (link: Link): void => {
    const upstream = net.connect(target);
    link.upstream = upstream;
    link.up.to = upstream;
    attach(link, upstream, link.down);
    pump(link, link.up);
  };

  const connect = (client: net.Socket): void => {
    accepted++;
    if (isCut) {
      client.resetAndDestroy();
      return;
    }
    const link: Link = { client, upstream: undefined, up: { queue: [], to: undefined, ended: false }, down: { queue: [], to: client, ended: false } };
    links.add(link);
    attach(link, client, link.up);
    // Across a partition the target never hears of the connection; it is opened once the network heals.
    if (mode.kind !== 'blackhole') openUpstream(link);
  };

  let server = await listen(connect, options.port ?? 0);
  const { port } = server.address() as net.AddressInfo;

  const destroyAll = (): void => {
    for (const link of links) {
      link.client.resetAndDestroy();
      link.upstream?.resetAndDestroy();
      drop(link);
    }
  };
  const setMode = (next: ProxyMode): void => {
    mode = next;
    if (mode.kind === 'blackhole') return;
    for (const link of links) {
      if (!link.upstream && link.up.ended) drop(link);
      if (!link.upstream && !link.up.ended) openUpstream(link);
      pump(link, link.up);
      pump(link, link.down);
    }
  };
  const stopListening = (): Promise<void> => new Promise((resolve) => server.close(() => resolve()));

  return {
    port,
    get accepted() {
      return accepted;
    },
    get open() {
      return [...links].filter((link) => !link.up.ended).length;
    },
    get mode() {
      return mode;
    },
    cut() {
      isCut = true;
      destroyAll();
    },
    async reset() {
      if (mode.kind === 'reset') return;
      setMode({ kind: 'reset' });
      const closed = stopListening();
      destroyAll();
      await closed;
    },
    blackhole() {
      setMode({ kind: 'blackhole' });
    },
    latency(ms) {
      setMode({ kind: 'latency', latencyMs: ms });
    },
    async restore() {
      isCut = false;
      if (mode.kind === 'reset') server = await listen(connect, port);
      setMode({ kind: 'pass' });
    },
    async close() {
      destroyAll();
      if (mode.kind !== 'reset') await stopListening();
    },
  };
}

async function listen(onConnection: (socket: net.Socket) => void, port: number): Promise<net.Server> {
  const server = net.createServer(onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return server;
}

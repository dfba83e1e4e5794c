import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * How a cut looks to both ends: `reset` destroys every connection, open and
 * new (a firewall that rejects: the peer sees ECONNRESET at once); `blackhole`
 * keeps accepting but passes no byte either way, not even a close (a link
 * that drops packets: the peer sees silence and must notice it by itself).
 */
export type CutMode = 'reset' | 'blackhole';

/** One proxied connection: the accepted socket, the one to the target, and whether a cut ate bytes of it. */
interface Pair {
  client: Socket;
  upstream: Socket;
  /** Bytes were dropped (or a close swallowed): the stream cannot resume intact, so heal() resets it. */
  broken: boolean;
}

/**
 * A TCP proxy on 127.0.0.1 that a test controls: it forwards to `target`
 * until cut(), and again after heal(). Written on node:net rather than
 * Toxiproxy (a separate Go binary with an HTTP control API): forwarding,
 * resetting and swallowing bytes is a few dozen lines, and the test keeps
 * every socket in hand to close on dispose().
 */
export class TcpProxy {
  private readonly pairs = new Set<Pair>();
  private mode: CutMode | undefined;
  /** Bytes dropped by blackhole cuts, both ways (for the test to check the cut bit). */
  dropped = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  /** Listens on a free loopback port and forwards every connection to `target` (a loopback host:port). */
  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const server = createServer();
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
    });
    const proxy = new TcpProxy(server, port, target);
    server.on('connection', (client) => proxy.accept(client));
    return proxy;
  }

  /** The proxy's host:port, e.g. for cluster.advertiseAddress. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Connections open through the proxy now. */
  get connections(): number {
    return this.pairs.size;
  }

  /** Cuts the path: see CutMode. A second cut replaces the first. */
  cut(mode: CutMode): void {
    this.mode = mode;
    if (mode === 'reset') for (const pair of [...this.pairs]) this.close(pair);
  }

  /** Restores forwarding. Connections a blackhole ate bytes of are reset, as TCP would once its retransmissions gave up. */
  heal(): void {
    this.mode = undefined;
    for (const pair of [...this.pairs]) if (pair.broken) this.close(pair);
  }

  /** Stops listening and destroys every socket it holds. */
  async dispose(): Promise<void> {
    for (const pair of [...this.pairs]) this.close(pair);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (this.mode === 'reset') {
      client.resetAndDestroy();
      return;
    }
    const upstream = createConnection(this.target);
    const pair: Pair = { client, upstream, broken: false };
    this.pairs.add(pair);
    // In a blackhole the connect to the target still happens, but the peer never hears of it.
    this.pipe(pair, client, upstream);
    this.pipe(pair, upstream, client);
  }

  /** Forwards `from` to `to` while not cut; a close or an error ends both sides unless a blackhole swallows it. */
  private pipe(pair: Pair, from: Socket, to: Socket): void {
    from.on('data', (chunk: Buffer) => {
      if (this.mode === 'blackhole' || pair.broken) {
        pair.broken = true;
        this.dropped += chunk.length;
        return;
      }
      // Backpressure: a test proxy carries small messages; pausing keeps a large one from buffering unbounded.
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    });
    const ended = () => {
      if (this.mode === 'blackhole') {
        pair.broken = true; // the close is lost too: the other end stays open until heal() or dispose()
        return;
      }
      this.close(pair);
    };
    from.on('end', ended);
    from.on('error', ended);
    from.on('close', ended);
  }

  private close(pair: Pair): void {
    if (!this.pairs.delete(pair)) return;
    for (const socket of [pair.client, pair.upstream]) {
      // resetAndDestroy sends RST (needs a connected socket); destroy() covers one still connecting.
      if (socket.readyState === 'open' || socket.readyState === 'readOnly' || socket.readyState === 'writeOnly') socket.resetAndDestroy();
      else socket.destroy();
    }
  }
}

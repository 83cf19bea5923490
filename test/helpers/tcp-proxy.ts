import net from 'node:net';

/**
 * A proxy in front of a real server (PostgreSQL, Redis over TCP; the ipc
 * broker over a unix socket), so a test can cut connections and refuse new
 * ones without touching the server, then restore service.
 */
export class TcpProxy {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  /** Each open client socket with its upstream, for black-holing. */
  private readonly pairs = new Map<net.Socket, net.Socket>();
  private readonly target: net.NetConnectOpts;
  private cutOff = false;
  /** Connections accepted so far. */
  accepted = 0;

  /** `new TcpProxy(host, port)` for TCP, `new TcpProxy({ path })` for a unix socket. */
  constructor(target: string | { path: string }, targetPort?: number) {
    this.target =
      typeof target === 'string' ? { host: target, port: targetPort! } : { path: target.path };
  }

  /** Listens on an ephemeral TCP port, a given port, or a unix socket path; resolves to the port (0 for a path). */
  async start(listen: number | string = 0): Promise<number> {
    this.server = net.createServer(client => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      if (typeof listen === 'string') this.server!.listen(listen, () => resolve());
      else this.server!.listen(listen, '127.0.0.1', () => resolve());
    });
    return typeof listen === 'string' ? 0 : this.port;
  }

  get port(): number {
    const address = this.server?.address();
    if (!address || typeof address === 'string') throw new Error('proxy is not listening on TCP');
    return address.port;
  }

  /** A URL like `redis://127.0.0.1:<proxy port>` with the target's path. */
  url(template: string): string {
    const url = new URL(template);
    url.hostname = '127.0.0.1';
    url.port = String(this.port);
    return url.toString();
  }

  private accept(client: net.Socket): void {
    if (this.cutOff) {
      client.destroy();
      return;
    }
    this.accepted++;
    const upstream = net.connect(this.target);
    if (!('path' in this.target)) {
      client.setNoDelay(true);
      upstream.setNoDelay(true);
    }
    this.sockets.add(client);
    this.sockets.add(upstream);
    this.pairs.set(client, upstream);
    const teardown = (): void => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
      this.pairs.delete(client);
    };
    client.on('error', teardown).on('close', teardown);
    upstream.on('error', teardown).on('close', teardown);
    this.join(client, upstream);
  }

  /** Carries the bytes of a connection both ways: as they come, here. */
  protected join(client: net.Socket, upstream: net.Socket): void {
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Destroys every open connection and refuses new ones until `restore()`. */
  cut(): void {
    this.cutOff = true;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  /** Destroys open connections but keeps accepting new ones (a blip). */
  reset(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  /**
   * Black-holes every open connection: bytes stop in both directions and are
   * dropped, but the sockets stay open (no FIN, no RST), as when a peer
   * vanishes behind a firewall or a frozen VM. Only a timeout of the client's
   * own can notice. New connections are served normally.
   */
  blackhole(): void {
    for (const [client, upstream] of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      // Keep reading and discard, so nothing is buffered or pushed back.
      client.on('data', () => undefined);
      upstream.on('data', () => undefined);
    }
    this.pairs.clear();
  }

  restore(): void {
    this.cutOff = false;
  }

  get connections(): number {
    return this.sockets.size / 2;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>(resolve =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
  }
}

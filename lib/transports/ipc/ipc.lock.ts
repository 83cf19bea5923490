import { createHash } from 'node:crypto';
import net from 'node:net';
import { IpcSocketError } from './ipc.errors.js';

/**
 * The name of the broker lock of a socket path: a Linux abstract unix socket
 * `\0herald-<uid>-<hash of the socket path>`. Binding it is atomic and the
 * kernel releases it the moment its holder dies (SIGKILL included), which
 * is what a lock file cannot give us without flock.
 */
export function brokerLockName(socketPath: string): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  const app = createHash('sha1').update(socketPath).digest('hex').slice(0, 16);
  return `\0herald-${uid}-${app}`;
}

/** Whether this platform has abstract unix sockets (Linux). Elsewhere the stale-socket probe is all there is. */
export const ABSTRACT_LOCKS = process.platform === 'linux';

/**
 * The broker lock, held while this process hosts the broker of a socket
 * path. Only its holder probes, unlinks and binds the filesystem socket,
 * so two processes can never both unlink and bind it.
 */
export class BrokerLock {
  private constructor(
    readonly name: string,
    private server: net.Server | undefined,
  ) {}

  /** Takes the lock, or resolves undefined when another live process holds it. */
  static async tryAcquire(socketPath: string): Promise<BrokerLock | undefined> {
    const name = brokerLockName(socketPath);
    if (!ABSTRACT_LOCKS) return new BrokerLock(name, undefined);
    const server = net.createServer(socket => socket.destroy());
    const won = await new Promise<boolean>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'EADDRINUSE') resolve(false);
        else reject(new IpcSocketError(`cannot take the broker lock: ${error.message}`));
      });
      server.listen(name, () => resolve(true));
    });
    if (!won) return undefined;
    // Nobody connects to a lock; an error after binding cannot release it early.
    server.on('error', () => undefined);
    // The lock must not keep a process alive on its own.
    server.unref();
    return new BrokerLock(name, server);
  }

  /** Takes the lock or throws `IpcSocketError` naming who holds it. */
  static async acquire(socketPath: string): Promise<BrokerLock> {
    const lock = await BrokerLock.tryAcquire(socketPath);
    if (!lock) {
      throw new IpcSocketError(
        `another process holds the broker lock of ${socketPath} (a broker is already running)`,
      );
    }
    return lock;
  }

  get held(): boolean {
    return this.server !== undefined || !ABSTRACT_LOCKS;
  }

  release(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return Promise.resolve();
    return new Promise(resolve => server.close(() => resolve()));
  }
}

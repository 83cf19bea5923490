import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './free-port.js';
import { waitFor } from './wait-for.js';

function ping(port: number): Promise<boolean> {
  return new Promise(resolve => {
    const socket = net.connect(port, '127.0.0.1');
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', chunk => done(chunk.toString().startsWith('+PONG')));
  });
}

/** How a {@link PrivateRedis} keeps its data. */
export interface PrivateRedisOptions {
  /**
   * `true` (default): `appendonly yes`, `appendfsync always`: nothing
   * acknowledged is lost across a kill. `false`: no AOF, no RDB: a restart
   * starts empty, as a cache-only Redis does.
   */
  persistence?: boolean;
}

/**
 * A throwaway redis-server of our own on a free port, for tests that stop
 * and restart Redis (never the shared one). Durable like production should
 * be by default: `appendonly yes`, `appendfsync always`, in a temp dir that
 * survives restarts until `stop()`; `{ persistence: false }` for a Redis
 * that forgets everything when it restarts.
 */
export class PrivateRedis {
  port = 0;
  private child?: ChildProcess;
  private readonly dir = mkdtempSync(path.join(os.tmpdir(), 'herald-redis-'));

  /** @param extraArgs more redis-server options, e.g. `['--enable-debug-command', 'yes']` */
  constructor(
    private readonly extraArgs: readonly string[] = [],
    private readonly options: PrivateRedisOptions = {},
  ) {}

  /** The server's data directory (e.g. for a cluster config file). */
  get dataDir(): string {
    return this.dir;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts the server (on the same port after a `kill`); resolves once it answers PING. */
  async start(): Promise<this> {
    if (this.port === 0) this.port = await freePort();
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--appendonly',
        this.options.persistence === false ? 'no' : 'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
        '--protected-mode',
        'no',
        ...this.extraArgs,
      ],
      { stdio: 'ignore' },
    );
    this.child = child;
    const exited = new Promise<void>(resolve => child.once('exit', () => resolve()));
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
        return ping(this.port);
      },
      { timeoutMs: 10_000, intervalMs: 20, message: `private redis on port ${this.port}` },
    );
    void exited;
    return this;
  }

  /** Kills the server (SIGKILL: no shutdown save; the AOF is all that survives). */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>(resolve => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  /**
   * `SHUTDOWN NOSAVE`: the clean stop of an operator who does not keep data
   * (without persistence, a restart then starts empty). Resolves once the
   * process exited.
   */
  async shutdownNosave(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>(resolve => child.once('exit', () => resolve()));
    const socket = net.connect(this.port, '127.0.0.1');
    socket.once('error', () => undefined);
    socket.once('connect', () => socket.write('SHUTDOWN NOSAVE\r\n'));
    await exited;
    socket.destroy();
  }

  /** Kills and starts it again on the same port with the same data dir. */
  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  /** Kills the server and removes its data. */
  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

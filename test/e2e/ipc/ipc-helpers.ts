import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { HeraldLogger } from '../../../lib/index.js';
import { spawnNode, type ChildHandle } from '../../helpers/processes.js';

/** A fresh 0700 directory for this test file's sockets (mkdtemp creates it 0700). */
export function socketDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'herald-ipc-'));
}

/** A logger that keeps lines for assertions. */
export function memoryLogger(): HeraldLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    log: message => void lines.push(`log ${message}`),
    warn: message => void lines.push(`warn ${message}`),
    error: message => void lines.push(`error ${message}`),
    debug: message => void lines.push(`debug ${message}`),
  };
}

export interface WorkerSpec {
  socketPath: string;
  workerId: number;
  workerCount: number;
  maxQueueLength?: number;
  postTimeoutMs?: number;
  slowMs?: number;
  /** Broker election among the workers (independent processes). */
  failover?: boolean;
}

/** Starts test/fixtures/ipc/worker.ts as a real process and waits until it is connected. */
export async function startWorker(spec: WorkerSpec, waitReady = true): Promise<ChildHandle> {
  const { slowMs, ...options } = spec;
  const child = spawnNode('test/fixtures/ipc/worker.ts', {
    env: { IPC_OPTIONS: JSON.stringify(options), SLOW_MS: String(slowMs ?? 0) },
  });
  if (waitReady) await child.waitForLine(`ready ${spec.workerId}`);
  return child;
}

export function command(child: ChildHandle, value: Record<string, unknown>): void {
  child.send(JSON.stringify(value));
}

/** The `got` lines of a worker, as `source/event data`. */
export function received(child: ChildHandle, source?: string): string[] {
  return child.lines
    .filter(line => line.startsWith('got ') && (!source || line.startsWith(`got ${source}/`)))
    .map(line => line.slice(4));
}

/**
 * A unix-socket proxy in front of the broker, so a test can cut a worker's
 * connection mid-stream (the TcpProxy of test/helpers, for unix sockets).
 */
export class UnixProxy {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  accepted = 0;

  constructor(
    readonly listenPath: string,
    private readonly targetPath: string,
  ) {}

  async start(): Promise<void> {
    this.server = net.createServer(client => {
      this.accepted++;
      const upstream = net.connect(this.targetPath);
      this.sockets.add(client);
      this.sockets.add(upstream);
      const teardown = (): void => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', teardown).on('close', teardown);
      upstream.on('error', teardown).on('close', teardown);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>(resolve => this.server!.listen(this.listenPath, resolve));
  }

  /** Destroys every open connection (the worker reconnects through the proxy). */
  reset(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  async close(): Promise<void> {
    this.reset();
    await new Promise<void>(resolve =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
  }
}

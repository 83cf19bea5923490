import { spawnNode, type ChildHandle } from '../../helpers/processes.js';
import { tempDir } from '../../helpers/temp-dir.js';
import { memoryLogger as recordingLogger } from '../../helpers/memory-logger.js';

/** A fresh 0700 directory for this test file's sockets (mkdtemp creates it 0700). */
export function socketDir(): string {
  return tempDir('herald-ipc-');
}

/** A logger that keeps lines for assertions. */
export interface WorkerSpec {
  socketPath: string;
  workerId: number;
  workerCount: number;
  maxQueueLength?: number;
  postTimeoutMs?: number;
  slowMs?: number;
  /** Broker election among the workers (independent processes). */
  failover?: boolean;
  maxPayloadBytes?: number;
}

/** Starts test/fixtures/ipc/worker.ts as a real process (without waiting). */
export function spawnWorker(spec: WorkerSpec): ChildHandle {
  const { slowMs, ...options } = spec;
  return spawnNode('test/fixtures/ipc/worker.ts', {
    env: { IPC_OPTIONS: JSON.stringify(options), SLOW_MS: String(slowMs ?? 0) },
  });
}

/** Starts test/fixtures/ipc/worker.ts as a real process and waits until it is connected. */
export async function startWorker(spec: WorkerSpec, waitReady = true): Promise<ChildHandle> {
  const child = spawnWorker(spec);
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

/** The ipc e2e tests' logger: every line, `log` lines prefixed. */
export const memoryLogger = (): ReturnType<typeof recordingLogger> =>
  recordingLogger({ debug: true, logPrefix: 'log ' });

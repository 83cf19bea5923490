import cluster, { type Worker } from 'node:cluster';
import type { Clock } from '../../common/clock.js';
import { InvalidOptionsError } from '../../common/errors.js';
import { booleanOption, integerOption, optionsObject } from '../../common/options.validation.js';
import type { HeraldLogger } from '../../common/logger.js';
import { IpcBroker } from './ipc.broker.js';
import { ENV_SOCKET_PATH, ENV_WORKER_COUNT, ENV_WORKER_ID } from './ipc.constants.js';
import type { IpcBrokerOptions } from './ipc.options.js';

let lastBroker: IpcBroker | undefined;

/**
 * Starts the broker in a node:cluster primary (which has no Nest app):
 * validates the options, checks the socket directory, replaces a stale
 * socket, listens. Resolves with the broker (its `connected` event and
 * `connectedWorkers` say who is there). @publicApi
 */
export async function startBroker(
  options: IpcBrokerOptions = {},
  deps: { logger?: HeraldLogger; clock?: Clock } = {},
): Promise<IpcBroker> {
  const broker = new IpcBroker(options, deps);
  await broker.listen();
  lastBroker = broker;
  return broker;
}

/** Options of {@link forkWorkers}. @publicApi */
export interface ForkWorkersOptions {
  /** The broker the workers connect to. @default the last one `startBroker` started */
  broker?: IpcBroker;
  /** Extra environment for every worker. */
  env?: Record<string, string>;
  /** Fork a worker again, with the same id, when it dies abnormally. @default true */
  respawn?: boolean;
}

/** The workers {@link forkWorkers} started, by stable worker id. @publicApi */
export interface ClusterWorkers {
  /** The live worker process of each id (replaced on respawn). */
  readonly workers: Map<number, Worker>;
  /** Stops respawning and disconnects every worker (they close their apps and exit). */
  stop(): Promise<void>;
}

/**
 * Forks `n` node:cluster workers, each given a stable id in
 * `HERALD_WORKER_ID` (0..n-1; `cluster.worker.id` changes on respawn and a
 * worker cannot learn the count), `HERALD_WORKER_COUNT` and the broker's
 * socket path. A worker that dies abnormally is forked again with its id,
 * so events queued for it at the broker reach its successor. @publicApi
 */
export function forkWorkers(n: number, options: ForkWorkersOptions = {}): ClusterWorkers {
  if (!cluster.isPrimary)
    throw new InvalidOptionsError('forkWorkers must be called in the node:cluster primary');
  optionsObject('forkWorkers', options, ['broker', 'env', 'respawn']);
  integerOption('forkWorkers', 'n', n, Number.NaN, 1);
  const broker = options.broker ?? lastBroker;
  if (broker && n > broker.options.workerCount) {
    throw new InvalidOptionsError(
      `forkWorkers: ${n} workers, but the broker was started with workerCount ${broker.options.workerCount}`,
    );
  }
  const respawn = booleanOption('forkWorkers', 'respawn', options.respawn, true);
  const workers = new Map<number, Worker>();
  let stopping = false;
  const fork = (id: number): void => {
    const env: Record<string, string> = {
      ...options.env,
      [ENV_WORKER_ID]: String(id),
      [ENV_WORKER_COUNT]: String(broker?.options.workerCount ?? n),
    };
    if (broker) env[ENV_SOCKET_PATH] = broker.socketPath;
    const worker = cluster.fork(env);
    workers.set(id, worker);
    worker.on('exit', (code, signal) => {
      if (
        workers.get(id) === worker &&
        !stopping &&
        respawn &&
        (code !== 0 || signal) &&
        !worker.exitedAfterDisconnect
      ) {
        fork(id);
      }
    });
  };
  for (let id = 0; id < n; id++) fork(id);
  return {
    workers,
    stop: async () => {
      stopping = true;
      await Promise.all(
        [...workers.values()].map(
          worker =>
            new Promise<void>(resolve => {
              if (worker.isDead()) return resolve();
              worker.once('exit', () => resolve());
              worker.disconnect();
            }),
        ),
      );
    },
  };
}

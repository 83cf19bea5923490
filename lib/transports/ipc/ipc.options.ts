import cluster from 'node:cluster';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { InvalidOptionsError } from '../../common/errors.js';
import {
  booleanOption,
  describeValue,
  functionOption,
  integerOption,
  invalidOption,
  objectOption,
  optionsObject,
  stringOption,
} from '../../common/options.validation.js';
import type { HeraldLogger } from '../../common/logger.js';
import { resolveUniqueOptions } from '../../common/unique-cache.js';
import type { Delivery, TransportState } from '../../interfaces/transport.interface.js';
import {
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_PAYLOAD_BYTES,
  DEFAULT_MAX_QUEUE_LENGTH,
  DEFAULT_POST_TIMEOUT_MS,
  ENV_PM2_INSTANCE,
  ENV_SOCKET_PATH,
  ENV_WORKER_COUNT,
  ENV_WORKER_ID,
  MAX_PAYLOAD_LIMIT,
  MAX_SOCKET_PATH_BYTES,
} from './ipc.constants.js';

/** Options shared by the broker and its workers. @publicApi */
export interface IpcCommonOptions {
  /**
   * The unix socket. Its directory must be ours (owned by this uid, mode
   * 0700, not a symlink); it is created with mode 0700 when missing.
   * @default `$HERALD_IPC_SOCKET`, else `<$XDG_RUNTIME_DIR or os.tmpdir()>/nest-herald-<uid>/<hash of cwd and main script>.sock`
   */
  socketPath?: string;
  /** How many workers share the broker (ids 0..workerCount-1). @default `$HERALD_WORKER_COUNT`, else 1 */
  workerCount?: number;
  /**
   * Bound of every queue: the broker's queue per worker id, the events a
   * worker holds unsettled, the posts waiting for the broker's ack.
   * @default 10240
   */
  maxQueueLength?: number;
  /** Largest encoded event data, in bytes; at most 16 MiB - 1. @default 65536 */
  maxPayloadBytes?: number;
}

/** Options of the ipc transport (`EventsModule.forRoot({ transport: 'ipc', ipc })`). @publicApi */
export interface IpcTransportOptions extends IpcCommonOptions {
  /**
   * This process's stable worker id, 0..workerCount-1.
   * @default `$HERALD_WORKER_ID` (set by `forkWorkers`), else `$NODE_APP_INSTANCE` (pm2), else 0
   */
  workerId?: number;
  /** The worker id whose process hosts the broker when the processes are independent (pm2). @default 0 */
  brokerId?: number;
  /**
   * How long a post may wait for room in a connected but slow worker's
   * queue before it rejects with `QueueFullError`. @default 5000
   */
  postTimeoutMs?: number;
  /**
   * Whether this process hosts the broker. @default true when this process
   * is not a node:cluster worker and its workerId is brokerId
   */
  hostBroker?: boolean;
  /**
   * Broker election among independent processes: every process may host the
   * broker; whoever takes the broker lock first does, and when it dies a
   * surviving process takes the lock over (random back-off) and the others
   * reconnect to it. `hostBroker` and `brokerId` are then not used.
   * @default true when neither `hostBroker` is set nor this process is a node:cluster worker
   */
  failover?: boolean;
}

/** Options of {@link startBroker} and `IpcBroker`. @publicApi */
export interface IpcBrokerOptions extends IpcCommonOptions {
  /** The broker's unique cache. @default { ttlMs: 2000, cacheSize: 1024 } */
  unique?: { ttlMs?: number; cacheSize?: number };
  /** A connection must send its HELLO within this long, or it is closed. @default 5000 */
  handshakeTimeoutMs?: number;
  /**
   * This process is a privileged agent from the start: every broadcast is
   * kept in its own retained queue until a handler is registered with
   * `broker.register(...)` (else the queue starts at the first `register`).
   * @default false
   */
  privileged?: boolean;
}

export interface ResolvedIpcCommon {
  readonly socketPath: string;
  readonly workerCount: number;
  readonly maxQueueLength: number;
  readonly maxPayloadBytes: number;
}

export interface ResolvedIpcTransportOptions extends ResolvedIpcCommon {
  readonly workerId: number;
  readonly brokerId: number;
  readonly postTimeoutMs: number;
  readonly hostBroker: boolean;
  readonly failover: boolean;
}

export interface ResolvedIpcBrokerOptions extends ResolvedIpcCommon {
  readonly unique: { readonly ttlMs: number; readonly cacheSize: number };
  readonly handshakeTimeoutMs: number;
  readonly privileged: boolean;
}

/**
 * Options of the worker side of the protocol (`IpcClient`), which the ipc
 * transport builds from its own resolved options. @internal
 */
export interface IpcClientOptions {
  readonly socketPath: string;
  readonly workerId: number;
  /** Events the broker may send before this worker acknowledges them. */
  readonly window: number;
  readonly postTimeoutMs: number;
  /** Limit of an event frame until the broker states its own. */
  readonly maxFrameBytes: number;
  readonly maxQueueLength: number;
  readonly logger: HeraldLogger;
  deliver(delivery: Delivery): void;
  /**
   * Called on every state change after the first, with its reason.
   * @deprecated subscribe to `IpcClient.status$`, the one status path; this
   * callback is an adapter fed from it (kept for callers written before).
   */
  status?(state: TransportState, reason?: string): void;
}

/** {@link IpcClientOptions} resolved: every member present, `status` possibly undefined. */
export type ResolvedIpcClientOptions = Readonly<Omit<IpcClientOptions, 'deliver' | 'status'>> & {
  readonly deliver: (delivery: Delivery) => void;
  readonly status: ((state: TransportState, reason?: string) => void) | undefined;
};

type Env = Readonly<Record<string, string | undefined>>;

/** Scope of every ipc option message: `ipc: <name> must be <rule> (got <value>, <type>)`. */
const SCOPE = 'ipc';

function integer(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  return integerOption(SCOPE, name, value, Number.NaN, min, max);
}

const COMMON_KEYS = ['socketPath', 'workerCount', 'maxQueueLength', 'maxPayloadBytes'] as const;
const TRANSPORT_KEYS = [
  ...COMMON_KEYS,
  'workerId',
  'brokerId',
  'postTimeoutMs',
  'hostBroker',
  'failover',
] as const;
const CLIENT_KEYS = [
  'socketPath',
  'workerId',
  'window',
  'postTimeoutMs',
  'maxFrameBytes',
  'maxQueueLength',
  'logger',
  'deliver',
  'status',
] as const;
const BROKER_KEYS = [...COMMON_KEYS, 'unique', 'handshakeTimeoutMs', 'privileged'] as const;

function fromEnv(env: Env, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value)) {
    throw new InvalidOptionsError(
      `environment variable ${name} must be an integer >= 0 (got '${raw}')`,
    );
  }
  return value;
}

/**
 * The default socket path: a directory of our own under `$XDG_RUNTIME_DIR`
 * (per-user, tmpfs) or the OS temp dir, and a file named after the app
 * (working directory + main script), so two apps on one host never share a
 * broker by accident while a primary and its workers (or pm2 instances of
 * one app) always agree. @publicApi
 */
export function defaultSocketPath(env: Env = process.env): string {
  const base = env.XDG_RUNTIME_DIR || os.tmpdir();
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  const app = createHash('sha1')
    .update(`${process.cwd()}\0${process.argv[1] ?? ''}`)
    .digest('hex')
    .slice(0, 12);
  return path.join(base, `nest-herald-${uid}`, `${app}.sock`);
}

function common(
  options: IpcCommonOptions,
  env: Env,
  workerCountFallback: number,
): ResolvedIpcCommon {
  const socketPath = options.socketPath ?? (env[ENV_SOCKET_PATH] || defaultSocketPath(env));
  if (typeof socketPath !== 'string' || socketPath === '') {
    invalidOption(SCOPE, 'socketPath', 'a non-empty string', socketPath);
  }
  // The original's `unix:/path` form is accepted as well.
  const filePath = socketPath.startsWith('unix:') ? socketPath.slice(5) : socketPath;
  if (filePath === '') {
    throw new InvalidOptionsError(
      `ipc: socketPath must name a file after 'unix:' (got ${describeValue(socketPath)})`,
    );
  }
  if (filePath.includes('\0'))
    throw new InvalidOptionsError(
      `ipc: socketPath must not contain NUL (got ${describeValue(socketPath)})`,
    );
  const bytes = Buffer.byteLength(filePath);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new InvalidOptionsError(
      `ipc: socketPath is ${bytes} bytes, over the ${MAX_SOCKET_PATH_BYTES} bytes a unix socket path may have (got ${describeValue(filePath)})`,
    );
  }
  return {
    socketPath: path.resolve(filePath),
    workerCount: integer(
      'workerCount',
      options.workerCount ?? fromEnv(env, ENV_WORKER_COUNT) ?? workerCountFallback,
      1,
      65_535,
    ),
    maxQueueLength: integer(
      'maxQueueLength',
      options.maxQueueLength ?? DEFAULT_MAX_QUEUE_LENGTH,
      1,
    ),
    maxPayloadBytes: integer(
      'maxPayloadBytes',
      options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
      1,
      MAX_PAYLOAD_LIMIT,
    ),
  };
}

/** Validates transport options at start-up; throws `InvalidOptionsError` with what is wrong. */
export function resolveIpcTransportOptions(
  options: IpcTransportOptions = {},
  env: Env = process.env,
  isClusterWorker: boolean = cluster.isWorker,
): ResolvedIpcTransportOptions {
  options = optionsObject(SCOPE, options, [...TRANSPORT_KEYS]);
  const workerIdRaw =
    options?.workerId ?? fromEnv(env, ENV_WORKER_ID) ?? fromEnv(env, ENV_PM2_INSTANCE) ?? 0;
  const workerId = integer('workerId', workerIdRaw, 0, 65_534);
  if (
    workerId > 0 &&
    options.workerCount === undefined &&
    fromEnv(env, ENV_WORKER_COUNT) === undefined
  ) {
    throw new InvalidOptionsError(
      `ipc: workerCount is required with workerId ${workerId} (got undefined): set workerCount or $${ENV_WORKER_COUNT} (forkWorkers sets it)`,
    );
  }
  const resolved = common(options, env, 1);
  if (workerId >= resolved.workerCount) {
    throw new InvalidOptionsError(
      `ipc: workerId must be below workerCount (got workerId ${workerId}, workerCount ${resolved.workerCount}); set workerCount or $${ENV_WORKER_COUNT}`,
    );
  }
  const brokerId = integer('brokerId', options.brokerId ?? 0, 0, resolved.workerCount - 1);
  const postTimeoutMs = integer(
    'postTimeoutMs',
    options.postTimeoutMs ?? DEFAULT_POST_TIMEOUT_MS,
    1,
    2 ** 31 - 1,
  );
  const failover = booleanOption(
    SCOPE,
    'failover',
    options.failover,
    options.hostBroker === undefined && !isClusterWorker,
  );
  const hostBroker = booleanOption(
    SCOPE,
    'hostBroker',
    options.hostBroker,
    !isClusterWorker && workerId === brokerId,
  );
  return { ...resolved, workerId, brokerId, postTimeoutMs, hostBroker, failover };
}

/** Validates broker options at start-up; throws `InvalidOptionsError` with what is wrong. */
export function resolveIpcBrokerOptions(
  options: IpcBrokerOptions = {},
  env: Env = process.env,
): ResolvedIpcBrokerOptions {
  options = optionsObject(`${SCOPE} broker`, options, [...BROKER_KEYS]);
  const resolved = common(options, env, 1);
  return {
    ...resolved,
    unique: resolveUniqueOptions(options.unique, 'ipc broker: unique'),
    handshakeTimeoutMs: integer(
      'handshakeTimeoutMs',
      options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      1,
      2 ** 31 - 1,
    ),
    privileged: booleanOption('ipc broker', 'privileged', options.privileged, false),
  };
}

/** Validates the client's options; throws `InvalidOptionsError` naming the option, the rule and the value. */
export function resolveIpcClientOptions(options: IpcClientOptions): ResolvedIpcClientOptions {
  const scope = 'ipc client';
  options = optionsObject(scope, options, [...CLIENT_KEYS]);
  const logger = objectOption(scope, 'logger', options.logger) as HeraldLogger | undefined;
  if (!logger) invalidOption(scope, 'logger', 'a logger', logger);
  const deliver = functionOption<(delivery: Delivery) => void, undefined>(
    scope,
    'deliver',
    options.deliver,
    undefined,
  );
  if (!deliver) invalidOption(scope, 'deliver', 'a function', deliver);
  const int = (
    name: keyof IpcClientOptions,
    min: number,
    max = Number.MAX_SAFE_INTEGER,
  ): number => {
    const value = options[name];
    if (value === undefined) invalidOption(scope, name, `an integer >= ${min}`, value);
    return integerOption(scope, name, value, Number.NaN, min, max);
  };
  const status = functionOption<NonNullable<IpcClientOptions['status']>, undefined>(
    scope,
    'status',
    options.status,
    undefined,
  );
  return {
    socketPath:
      stringOption(scope, 'socketPath', options.socketPath, undefined) ??
      invalidOption(scope, 'socketPath', 'a non-empty string', undefined),
    workerId: int('workerId', 0, 65_534),
    window: int('window', 1, 2 ** 32 - 1),
    postTimeoutMs: int('postTimeoutMs', 1, 2 ** 31 - 1),
    maxFrameBytes: int('maxFrameBytes', 1),
    maxQueueLength: int('maxQueueLength', 1),
    logger,
    deliver,
    status,
  };
}

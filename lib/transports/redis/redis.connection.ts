import { Cluster, Redis, type ClusterNode, type ClusterOptions, type RedisOptions } from 'ioredis';
// After ioredis: its VerbatimString leaves String.prototype slow (see the module).
import './redis.string-prototype.js';
import { clusterClient, clusterSeeds } from './redis.cluster.js';

export { checkClusterStream, hasHashTag, hashTagOf } from './redis.cluster.js';
import type { Observable } from 'rxjs';
import { describeError, isError } from '../../common/describe-error.js';
import { logLine } from '../../common/log-line.js';
import { consoleLogger, type HeraldLogger } from '../../common/logger.js';
import {
  functionOption,
  invalidOption,
  objectOption,
  stringOption,
} from '../../common/options.validation.js';
import { StateMachine } from '../../common/state-machine.js';
import type { TransportState, TransportStatus } from '../../interfaces/transport.interface.js';

/**
 * A Redis connection (and a fold of them) may go from any state to any
 * other, as ioredis reports; `closed` (ours) is final.
 */
export const CONNECTION_TRANSITIONS: { readonly [S in TransportState]: readonly TransportState[] } =
  {
    connecting: ['connected', 'reconnecting', 'disconnected', 'closed'],
    connected: ['connecting', 'reconnecting', 'disconnected', 'closed'],
    reconnecting: ['connecting', 'connected', 'disconnected', 'closed'],
    disconnected: ['connecting', 'connected', 'reconnecting', 'closed'],
    closed: [],
  };

/** Where Redis is and how to reach it; shared by the publisher, the subscriber and the transport. @publicApi */
export interface RedisConnectionOptions {
  /** A `redis://` or `rediss://` URL. @default 'redis://127.0.0.1:6379' */
  url?: string;
  /**
   * Extra ioredis options (password, tls, db, retryStrategy...). The options
   * this package relies on are always overridden: no offline queue, no
   * resending of unanswered commands, failed commands reported at once, no
   * auto-pipelining (this package batches its own commands).
   */
  redis?: RedisOptions;
  /** Where connection errors are reported. @default consoleLogger */
  logger?: HeraldLogger;
  /**
   * Redis Cluster mode: the seed nodes (`[{ host, port }]` or
   * `'redis://host:port'` URLs; any few of the cluster's nodes), or an ioredis
   * `Cluster` the app owns, whose nodes and options are taken (this package
   * opens its own connections from them, since reads block and its command
   * settings differ; the app's `Cluster` is never used for commands nor
   * closed). In cluster mode every stream name must carry a hash tag
   * (`{orders}`, `shop:{orders}`), so a stream and the keys derived from it
   * (dead letters) share one slot; `url` is not used. `MOVED` and `ASK` are
   * followed, scripts are loaded on each node on first use.
   * @default none: one standalone Redis at `url`
   */
  cluster?: readonly (ClusterNode | string)[] | Cluster;
  /** Extra ioredis `ClusterOptions` for `cluster` nodes (e.g. `redisOptions.password`, `natMap`). */
  clusterOptions?: ClusterOptions;
}

/** @default */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/**
 * How soon a Redis that is loading its data (`LOADING`) is asked again: a
 * short fixed delay, so writes resume within milliseconds of the load
 * ending. ioredis's own default waits the server's loading ETA, at least 1 s.
 */
export const LOADING_RETRY_MS = 20;

/** The longest pause between two reconnection attempts. */
export const RECONNECT_MAX_DELAY_MS = 200;

/**
 * Reconnects at 20, 40, 80, 160 ms, then every 200 ms; never gives up while
 * open. A refused connection to a Redis that is down costs next to nothing,
 * and a restarted Redis is found within 200 ms of it listening.
 */
export function defaultRetryStrategy(times: number): number {
  return Math.min(10 * 2 ** Math.min(times, 10), RECONNECT_MAX_DELAY_MS);
}

/** True for a `LOADING` reply: Redis is up and reading its data; retried on {@link LOADING_RETRY_MS}. */
export function isLoadingReplyError(error: unknown): boolean {
  return describe(error).startsWith('LOADING');
}

const describe = describeError;

function seedsOf(cluster: readonly (ClusterNode | string)[] | Cluster): string {
  const nodes = cluster instanceof Cluster ? clusterSeeds(cluster) : cluster;
  return nodes
    .slice(0, 3)
    .map(node =>
      typeof node === 'string'
        ? serverOf(node)
        : typeof node === 'number'
          ? `127.0.0.1:${node}`
          : `${node.host ?? '127.0.0.1'}:${node.port ?? 6379}`,
    )
    .join(',');
}

/** `host:port` of a Redis URL, without credentials, for log lines. */
function serverOf(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || '6379'}`;
  } catch {
    return 'redis';
  }
}

/**
 * One ioredis connection as this package uses it: lazily connected, with a
 * status observable, errors reported (never an unhandled `error` event), and
 * ioredis's own retry machinery turned off so the caller's buffer is the one
 * place where retries happen:
 *
 * - `enableOfflineQueue: false`: while disconnected a command fails at once
 *   instead of waiting in an unbounded queue;
 * - `autoResendUnfulfilledCommands: false` and `maxRetriesPerRequest: 0`: a
 *   command in flight when the socket drops is rejected immediately, never
 *   silently resent after reconnecting (which would duplicate XADDs and
 *   re-run half-done pipelines).
 * @publicApi
 */
export class RedisConnection {
  /**
   * The ioredis client. In cluster mode an ioredis `Cluster` (same command
   * API; see {@link isCluster}), which routes each command by its key.
   */
  readonly client: Redis;
  /** True when {@link client} is an ioredis `Cluster`. */
  readonly isCluster: boolean = false;
  /** Follows ioredis's events; `closed` (by {@link close}) is final. */
  private readonly machine: StateMachine<TransportState, { role: string }>;
  /** Every state change, with this connection's `role`; `closed` last. */
  readonly status$: Observable<TransportStatus>;
  private readonly logger: HeraldLogger;
  private reportedError = false;
  /** When the connection was lost (for the recovery line's downtime); undefined while up. */
  private downSince?: number;
  private everReady = false;
  private readonly server: string;
  private readyWaiters: (() => void)[] = [];

  constructor(
    options: RedisConnectionOptions,
    readonly role: string,
    overrides: RedisOptions = {},
  ) {
    this.logger = options.logger ?? consoleLogger;
    this.machine = new StateMachine(
      `redis ${role} connection`,
      'connecting',
      CONNECTION_TRANSITIONS,
      this.logger,
    );
    this.status$ = this.machine.status$;
    const base: RedisOptions = {
      retryStrategy: defaultRetryStrategy,
      // After close, a socket that never answers our FIN is destroyed this soon (ioredis waits 2 s).
      disconnectTimeout: 200,
      // The ready check (INFO until loading:0) asks again this soon, not after the loading ETA.
      enableReadyCheck: true,
      maxLoadingRetryTime: LOADING_RETRY_MS,
      ...options.redis,
      ...overrides,
      lazyConnect: true,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      // This package batches its own commands (one script per write batch, one read at a time),
      // and ioredis 5's auto-pipelining drops the command name of call()/callBuffer(), which it
      // uses for scripts and XAUTOCLAIM: the process died on an uncaught TypeError in a timer.
      enableAutoPipelining: false,
    };
    if (options.cluster === undefined) {
      this.client = new Redis(options.url ?? DEFAULT_REDIS_URL, base);
      this.server = serverOf(options.url ?? DEFAULT_REDIS_URL);
    } else {
      const cluster = clusterClient(options.cluster, options.clusterOptions, base);
      this.isCluster = true;
      // Cluster and Redis share the command API this package uses (call, pipeline, x*).
      this.client = cluster as unknown as Redis;
      this.server = `cluster ${seedsOf(options.cluster)}`;
    }
    this.client.on('ready', () => {
      this.reportedError = false;
      if (this.downSince !== undefined) {
        const downtimeMs = Date.now() - this.downSince;
        this.downSince = undefined;
        this.logger.log(
          logLine(
            'redis',
            'redis-connection-recovered',
            `${role} connection is back after ${downtimeMs} ms`,
            {
              role,
              server: this.server,
              downtimeMs,
            },
          ),
        );
      }
      this.everReady = true;
      this.next({ state: 'connected', role });
      const waiters = this.readyWaiters;
      this.readyWaiters = [];
      for (const waiter of waiters) waiter();
    });
    this.client.on('error', (error: unknown) => this.lost(describe(error)));
    this.client.on('close', () => {
      if (this.closed) return;
      this.lost('connection closed by the server');
      this.next({ state: 'disconnected', role, reason: 'connection closed' });
    });
    this.client.on('reconnecting', () => {
      if (!this.closed) this.next({ state: 'reconnecting', role });
    });
    this.client.on('end', () => {
      if (!this.closed)
        this.next({ state: 'disconnected', role, reason: 'no further reconnection' });
    });
  }

  /**
   * The connection is down (or never came up): one WARN per outage with the
   * reason (a down server would otherwise log every retry); the recovery
   * line (INFO) gives the downtime.
   */
  private lost(reason: string): void {
    if (this.closed) return;
    this.downSince ??= Date.now();
    if (this.reportedError) return;
    this.reportedError = true;
    const fields = { role: this.role, server: this.server };
    this.logger.warn(
      this.everReady
        ? logLine(
            'redis',
            'redis-connection-lost',
            `${this.role} connection lost, reconnecting: ${reason}`,
            fields,
          )
        : logLine(
            'redis',
            'redis-connect-failed',
            `${this.role} connection cannot connect, reconnecting: ${reason}`,
            fields,
          ),
    );
  }

  private next(status: TransportStatus): void {
    // Only a change of state is news (a new reason alone is not); after close, nothing is.
    if (this.closed || this.machine.is(status.state)) return;
    this.machine.setState(status.state, status.reason, { role: this.role });
  }

  private get closed(): boolean {
    return this.machine.is('closed');
  }

  /** True when commands can be sent now. */
  get ready(): boolean {
    return this.client.status === 'ready';
  }

  get state(): TransportStatus {
    return this.machine.status;
  }

  /**
   * Starts connecting; resolves on the first `ready`. A failed first attempt
   * does not reject: ioredis keeps reconnecting and the status says so.
   */
  connect(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.client.status === 'wait') this.client.connect().catch(() => undefined);
    return this.whenReady();
  }

  /** Resolves when the connection is (or becomes) ready, or when it is closed. */
  whenReady(): Promise<void> {
    if (this.ready || this.closed) return Promise.resolve();
    return new Promise(resolve => this.readyWaiters.push(resolve));
  }

  /** Calls `listener` on every `ready` until the returned disposer runs. */
  onReady(listener: () => void): () => void {
    this.client.on('ready', listener);
    return () => void this.client.off('ready', listener);
  }

  /**
   * Closes the connection now: commands in flight (a blocked XREAD) are
   * rejected. Idempotent.
   */
  close(): void {
    if (this.closed) return;
    this.machine.setState('closed', undefined, { role: this.role });
    this.client.disconnect(false);
    this.machine.complete();
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const waiter of waiters) waiter();
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

/** True for Redis replies that report a passing condition worth retrying. */
export function isTransientReplyError(error: unknown): boolean {
  const message = describe(error);
  return /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY|OOM|NOREPLICAS|MISCONF)\b/.test(
    message,
  );
}

/** True for a Redis error reply (as opposed to a connection or timeout error). */
export function isReplyError(error: unknown): boolean {
  return isError(error) && error.name === 'ReplyError';
}

/** The keys of {@link RedisConnectionOptions}, for the options objects that extend it. */
export const CONNECTION_OPTION_KEYS = [
  'url',
  'redis',
  'logger',
  'cluster',
  'clusterOptions',
] as const;

/** Checks the connection part of an options object (`url`, `redis`, `logger`). */
export function checkConnectionOptions(scope: string, options: RedisConnectionOptions): void {
  stringOption(scope, 'url', options.url, undefined);
  objectOption(scope, 'redis', options.redis);
  objectOption(scope, 'clusterOptions', options.clusterOptions);
  const cluster = options.cluster;
  if (cluster !== undefined && !(cluster instanceof Cluster)) {
    if (!Array.isArray(cluster) || cluster.length === 0)
      invalidOption(scope, 'cluster', 'a non-empty array of nodes or an ioredis Cluster', cluster);
    cluster.forEach((node: unknown, i) => {
      if (typeof node === 'string' || typeof node === 'number') return;
      if (node === null || typeof node !== 'object')
        invalidOption(scope, `cluster[${i}]`, "a { host, port } object or a 'redis://' URL", node);
    });
  }
  if (options.logger !== undefined) {
    objectOption(scope, 'logger', options.logger);
    functionOption(scope, 'logger.warn', options.logger.warn, undefined);
    functionOption(scope, 'logger.error', options.logger.error, undefined);
  }
}

import { Redis, type RedisOptions } from 'ioredis';
import { BehaviorSubject, type Observable } from 'rxjs';
import { describeError } from '../../common/describe-error.js';
import { consoleLogger, type HeraldLogger } from '../../common/logger.js';
import { functionOption, objectOption, stringOption } from '../../common/options.validation.js';
import type { TransportStatus } from '../../interfaces/transport.interface.js';

/** Where Redis is and how to reach it; shared by the publisher, the subscriber and the transport. @publicApi */
export interface RedisConnectionOptions {
  /** A `redis://` or `rediss://` URL. @default 'redis://127.0.0.1:6379' */
  url?: string;
  /**
   * Extra ioredis options (password, tls, db, retryStrategy...). The options
   * this package relies on are always overridden: no offline queue, no
   * resending of unanswered commands, failed commands reported at once.
   */
  redis?: RedisOptions;
  /** Where connection errors are reported. @default consoleLogger */
  logger?: HeraldLogger;
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
  readonly client: Redis;
  private readonly status = new BehaviorSubject<TransportStatus>({ state: 'connecting' });
  readonly status$: Observable<TransportStatus> = this.status.asObservable();
  private readonly logger: HeraldLogger;
  private closed = false;
  private reportedError = false;
  private readyWaiters: (() => void)[] = [];

  constructor(
    options: RedisConnectionOptions,
    readonly role: string,
    overrides: RedisOptions = {},
  ) {
    this.logger = options.logger ?? consoleLogger;
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
    };
    this.client = new Redis(options.url ?? DEFAULT_REDIS_URL, base);
    this.client.on('ready', () => {
      this.reportedError = false;
      this.next({ state: 'connected', role });
      const waiters = this.readyWaiters;
      this.readyWaiters = [];
      for (const waiter of waiters) waiter();
    });
    this.client.on('error', (error: unknown) => {
      // Reported once per outage: a down server would otherwise log every retry.
      if (this.reportedError || this.closed) return;
      this.reportedError = true;
      this.logger.error(`redis ${role} connection: ${describe(error)}`);
    });
    this.client.on('close', () => {
      if (!this.closed) this.next({ state: 'disconnected', role, reason: 'connection closed' });
    });
    this.client.on('reconnecting', () => {
      if (!this.closed) this.next({ state: 'reconnecting', role });
    });
    this.client.on('end', () => {
      if (!this.closed)
        this.next({ state: 'disconnected', role, reason: 'no further reconnection' });
    });
  }

  private next(status: TransportStatus): void {
    const current = this.status.value;
    if (current.state === 'closed') return;
    if (current.state !== status.state) this.status.next(status);
  }

  /** True when commands can be sent now. */
  get ready(): boolean {
    return this.client.status === 'ready';
  }

  get state(): TransportStatus {
    return this.status.value;
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
    this.closed = true;
    this.client.disconnect(false);
    this.status.next({ state: 'closed', role: this.role });
    this.status.complete();
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
  return error instanceof Error && error.name === 'ReplyError';
}

/** The keys of {@link RedisConnectionOptions}, for the options objects that extend it. */
export const CONNECTION_OPTION_KEYS = ['url', 'redis', 'logger'] as const;

/** Checks the connection part of an options object (`url`, `redis`, `logger`). */
export function checkConnectionOptions(scope: string, options: RedisConnectionOptions): void {
  stringOption(scope, 'url', options.url, undefined);
  objectOption(scope, 'redis', options.redis);
  if (options.logger !== undefined) {
    objectOption(scope, 'logger', options.logger);
    functionOption(scope, 'logger.warn', options.logger.warn, undefined);
    functionOption(scope, 'logger.error', options.logger.error, undefined);
  }
}

import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { Client, ClientConfig, Pool, Notification, QueryResult } from 'pg';
import { PayloadTooLargeError, QueueFullError, TransportClosedError } from '../../common/errors.js';
import { jsonCodec } from '../../common/json.codec.js';
import { silentLogger, type HeraldLogger } from '../../common/logger.js';
import {
  advisory,
  type PgHubAction,
  type PgHubAdvisoryEvent,
  type PgHubEvent,
  type PgHubRawEvent,
} from './pg.advisory.js';
import {
  encodePayload,
  splitPayload,
  normalizeKey,
  validateTopic,
  type PgKeyInput,
} from './pg.codec.js';
import {
  PG_HUB_DEFAULTS,
  PG_NOTIFY_MAX_PAYLOAD,
  SQL_NOTIFY_MANY,
  SQL_NOTIFY_MANY_ONE_TOPIC,
  SQL_NOTIFY_ONE,
} from './pg.constants.js';
import {
  PgConsumer,
  flattenTopics,
  type PgConsumerLink,
  type PgHubHook,
  type PgHubRawHook,
} from './pg.consumer.js';
import { PgDecodeError } from './pg.errors.js';
import { deepFreeze } from './pg.freeze.js';
import type { PgHubOptions } from './pg.options.js';

/**
 * Where the hub is: `idle` before `start()`, `connecting` until the first
 * LISTEN connection is up, `connected`, `reconnecting` after a loss,
 * `stopping`, `stopped`. @publicApi
 */
export type PgHubState =
  'idle' | 'connecting' | 'connected' | 'reconnecting' | 'stopping' | 'stopped';

/**
 * The hub's counters (pg-hub's HubStats, counted correctly, plus a few of
 * our own). @publicApi
 */
export interface PgHubStats {
  /** Notifications received on the LISTEN connection. */
  readonly rxEventCount: number;
  /** Received payloads that were not pg-hub events (counted, logged, dropped). */
  readonly rxErrorCount: number;
  /** Notifications of a channel no consumer wants any more. */
  readonly rxUnroutableCount: number;
  /** Topics added to consumers. */
  readonly subscribeCount: number;
  readonly listenCount: number;
  readonly listenFailCount: number;
  readonly unlistenCount: number;
  readonly unlistenFailCount: number;
  /** Notifies the server accepted. */
  readonly notifyCount: number;
  /** Notifies the server refused (each one alone, after its batch failed). */
  readonly notifyFailCount: number;
  /** Notify statements sent (round trips), retries included. */
  readonly notifyBatchCount: number;
  /** Batches that failed with a statement error and were retried one by one. */
  readonly notifyRetryCount: number;
  /** Notifies given up with `false` because the hub stopped first. */
  readonly notifyCancelCount: number;
  /** Successful connects of the LISTEN connection (first one and reconnects). */
  readonly connectCount: number;
  readonly connectFailCount: number;
  /** Losses of the LISTEN connection. */
  readonly disconnectCount: number;
  /** Hooks that threw or rejected. */
  readonly hookErrorCount: number;
  /** High-water mark of pending LISTEN/UNLISTEN commands. */
  readonly q1Max: number;
  /** High-water mark of queued notifies. */
  readonly q2Max: number;
  /** Notifies queued now. */
  readonly queued: number;
  readonly consumerCount: number;
}

/** Options of one notify. @publicApi */
export interface PgNotifyOptions {
  /** Called with true once sent, false when the hub stopped first or the server refused it. */
  confirm?: (sent: boolean) => void;
  /**
   * A client of yours (e.g. inside your transaction): the notify runs on it at
   * once, not queued, and so is delivered only if your transaction commits.
   * PostgreSQL folds identical topic+payload pairs within one transaction.
   */
  client?: { query(text: string, values: unknown[]): Promise<unknown> };
}

/** A queued notify. */
interface Outbound {
  readonly topic: string;
  readonly payload: string;
  /** Known unlike every other payload (it carries a unique id): no folding check. */
  readonly distinct?: boolean;
  settle(sent: boolean, error?: Error): void;
}

const noop = (): void => undefined;
/** TCP keepalive on the LISTEN socket: first probe after this idle time. */
const KEEPALIVE_DELAY_MS = 10_000;

/** The part of node-postgres' Client internals used to reach the socket. */
interface PgClientInternals {
  connection?: { stream?: { destroy?(): unknown } };
}

/** Marks a promise as handled so an unawaited rejection never crashes the process. */
function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(noop);
  return promise;
}

function quoteIdent(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * True for errors that mean the connection (not the statement) failed: no
 * server error, or SQLSTATE class 08 (connection exception) / 57P0x (the
 * server shut down or terminated the backend).
 */
export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof pg.DatabaseError)) return true;
  const code = error.code ?? '';
  return code.startsWith('08') || code.startsWith('57P');
}

/** A FIFO with peek and O(1) removal at the head. */
class OutboundQueue {
  private items: (Outbound | undefined)[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(item: Outbound): void {
    this.items.push(item);
  }
  at(index: number): Outbound {
    return this.items[this.head + index]!;
  }
  shift(): Outbound {
    const item = this.items[this.head]!;
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
  drain(): Outbound[] {
    const rest = this.items.slice(this.head) as Outbound[];
    this.items = [];
    this.head = 0;
    return rest;
  }
}

/**
 * pg-hub for Node: events over PostgreSQL LISTEN/NOTIFY. A topic is a
 * channel, a key an ordered list of int64, a value any JSON value, all in
 * one pure-ASCII payload (`e<keys>[:json]`) that Go and Node pg-hub
 * services read and write.
 *
 * One dedicated LISTEN connection (reconnected every `reconnectMs` with
 * jitter, every topic re-LISTENed), notifies through the pool, many per
 * statement, one batch in flight so a sender's order holds. Emits `state`
 * (state, reason) on every state change.
 * @publicApi
 */
export class PgHub extends EventEmitter {
  readonly name: string;
  readonly pool: Pool;
  private readonly ownsPool: boolean;
  private readonly logger: HeraldLogger;
  private readonly reconnectMs: number;
  private readonly heartbeatMs: number;
  private readonly heartbeatTimeoutMs: number;
  private readonly maxQueue: number;
  private readonly batchSize: number;
  private readonly maxPayloadBytes: number;
  private readonly applicationName: string;
  private readonly stopTimeoutMs: number;

  private currentState: PgHubState = 'idle';
  private everConnected = false;
  private stopRequested = false;
  private starting?: Promise<void>;
  private startWaiters: { resolve(): void; reject(error: Error): void }[] = [];
  private stopping?: Promise<void>;

  private listenClient?: Client;
  /** When the LISTEN connection was lost (for the recovery line), or undefined. */
  private lostAt?: number;
  private heartbeatTimeout?: NodeJS.Timeout;
  private connection = 0;
  private connectTimer?: NodeJS.Timeout;
  private heartbeatTimer?: NodeJS.Timeout;
  private heartbeatPending = false;
  /** The heartbeat query in flight: LISTENs wait for it (one query at a time). */
  private heartbeat?: Promise<unknown>;

  private readonly consumers = new Set<PgConsumer>();
  /** Topic -> consumers that want it. */
  private readonly wanted = new Map<string, Set<PgConsumer>>();
  /** Topics LISTENed on the current connection. */
  private readonly listening = new Set<string>();
  /** Subscriptions waiting for their LISTEN. */
  private pendingSubscribes: {
    consumer: PgConsumer;
    topic: string;
    done(error?: Error): void;
  }[] = [];
  private syncing = false;
  /** settleSubscribes is running (a hook re-entered it): the outer pass loops instead. */
  private settling = false;
  private settleAgain = false;

  private readonly queue = new OutboundQueue();
  private sending?: Promise<void>;
  private pumpScheduled = false;
  /** How many head items are still to be retried alone after their batch failed. */
  private singles = 0;
  private retryTimer?: NodeJS.Timeout;
  private drainWaiters: (() => void)[] = [];

  private readonly counters = {
    rxEventCount: 0,
    rxErrorCount: 0,
    rxUnroutableCount: 0,
    subscribeCount: 0,
    listenCount: 0,
    listenFailCount: 0,
    unlistenCount: 0,
    unlistenFailCount: 0,
    notifyCount: 0,
    notifyFailCount: 0,
    notifyBatchCount: 0,
    notifyRetryCount: 0,
    notifyCancelCount: 0,
    connectCount: 0,
    connectFailCount: 0,
    disconnectCount: 0,
    hookErrorCount: 0,
    q1Max: 0,
    q2Max: 0,
  };

  private readonly link: PgConsumerLink = {
    subscribe: (consumer, topics) => this.subscribeConsumer(consumer, topics),
    unsubscribe: (consumer, topics) => this.unsubscribeConsumer(consumer, topics),
    close: consumer => this.closeConsumer(consumer),
  };

  private readonly onPoolError = (error: Error): void => {
    this.logger.warn(`pg hub ${this.name}: idle pool connection failed: ${error.message}`);
  };

  constructor(options: PgHubOptions = {}) {
    super();
    this.name = options.name ?? 'pg-hub';
    this.logger = options.logger ?? silentLogger;
    this.reconnectMs = positive(options.reconnectMs, PG_HUB_DEFAULTS.reconnectMs, 'reconnectMs');
    this.heartbeatMs = positive(options.heartbeatMs, PG_HUB_DEFAULTS.heartbeatMs, 'heartbeatMs');
    this.heartbeatTimeoutMs = positive(
      options.heartbeatTimeoutMs,
      Math.min(this.heartbeatMs, PG_HUB_DEFAULTS.heartbeatTimeoutMs),
      'heartbeatTimeoutMs',
    );
    this.maxQueue = positive(options.maxQueue, PG_HUB_DEFAULTS.maxQueue, 'maxQueue');
    this.batchSize = positive(options.batchSize, PG_HUB_DEFAULTS.batchSize, 'batchSize');
    this.maxPayloadBytes = positive(
      options.maxPayloadBytes,
      PG_NOTIFY_MAX_PAYLOAD,
      'maxPayloadBytes',
    );
    this.stopTimeoutMs = positive(
      options.stopTimeoutMs,
      PG_HUB_DEFAULTS.stopTimeoutMs,
      'stopTimeoutMs',
    );
    this.applicationName = options.applicationName ?? PG_HUB_DEFAULTS.applicationName;
    if (options.pool) {
      this.pool = options.pool;
      this.ownsPool = false;
    } else {
      if (!options.connectionString && !options.poolConfig) {
        throw new TypeError('PgHub needs a pool, a connectionString or a poolConfig');
      }
      this.pool = new pg.Pool({
        connectionString: options.connectionString,
        max: positive(options.poolSize, PG_HUB_DEFAULTS.poolSize, 'poolSize'),
        application_name: this.applicationName,
        keepAlive: true,
        connectionTimeoutMillis: Math.max(5000, this.reconnectMs),
        ...options.poolConfig,
      });
      this.ownsPool = true;
    }
    this.pool.on('error', this.onPoolError);
  }

  /** The hub's state. */
  get state(): PgHubState {
    return this.currentState;
  }

  /** Backend pid of the LISTEN connection while connected. */
  get listenProcessId(): number | undefined {
    return (this.listenClient as unknown as { processID?: number } | undefined)?.processID;
  }

  /** The topics LISTENed on the current connection. */
  get listeningTopics(): readonly string[] {
    return [...this.listening];
  }

  /**
   * Asks the LISTEN connection for its `pg_listening_channels()` (a
   * diagnostic: what the server really delivers to this hub).
   * Rejects when not connected.
   */
  async listeningChannels(): Promise<string[]> {
    const client = this.listenClient;
    if (!client) throw new TransportClosedError('pg hub is not connected');
    const result = await client.query<{ channel: string }>(
      'SELECT pg_listening_channels() AS channel',
    );
    return result.rows.map(row => row.channel).sort();
  }

  /** The largest payload this hub sends, in bytes. */
  get payloadLimit(): number {
    return this.maxPayloadBytes;
  }

  /**
   * Connects the LISTEN connection and LISTENs every topic subscribed so
   * far; resolves at the first successful connect (after the `connect`
   * advisory). While the database is unreachable it keeps trying every
   * `reconnectMs`; rejects only if the hub is stopped first.
   */
  start(): Promise<void> {
    if (this.stopRequested) return Promise.reject(new TransportClosedError('pg hub is stopped'));
    this.starting ??= handled(
      new Promise<void>((resolve, reject) => {
        this.startWaiters.push({ resolve, reject });
        this.setState('connecting');
        void this.connectOnce();
      }),
    );
    return this.starting;
  }

  /**
   * Stops the hub: no more notifies are taken; with `wait` (default) those
   * queued may still go out for up to `stopTimeoutMs`; the rest are given up
   * (confirm and promise get false). Every consumer gets a final `stop`
   * advisory, connections are released (the pool ended if the hub made it).
   * Idempotent.
   */
  stop(options: { wait?: boolean } = {}): Promise<void> {
    this.stopping ??= this.shutdown(options.wait ?? true);
    return this.stopping;
  }

  /**
   * Creates a consumer of `topics` (more can be added with `subscribe`).
   * Throws `InvalidTopicError` for a bad topic, `TransportClosedError` after stop.
   */
  consumer(hook: PgHubHook, ...topics: (string | readonly string[])[]): PgConsumer {
    return this.addConsumer(hook, false, topics);
  }

  /**
   * Like `consumer`, but notifications reach the hook with their value as
   * JSON text ({@link PgHubRawEvent}), unparsed: for consumers that parse it
   * themselves (the EventsModule transport, microservice servers).
   */
  rawConsumer(hook: PgHubRawHook, ...topics: (string | readonly string[])[]): PgConsumer {
    return this.addConsumer(hook, true, topics);
  }

  private addConsumer(
    hook: PgHubHook | PgHubRawHook,
    raw: boolean,
    topics: readonly (string | readonly string[])[],
  ): PgConsumer {
    if (typeof hook !== 'function') throw new TypeError('hook must be a function');
    const flat = flattenTopics(topics);
    flat.forEach(validateTopic);
    if (this.stopRequested) throw new TransportClosedError('pg hub is stopped');
    const consumer = new PgConsumer(this.link, hook, raw);
    this.consumers.add(consumer);
    if (flat.length > 0) void this.subscribeConsumer(consumer, flat);
    return consumer;
  }

  /**
   * Sends an event: `topic` is the channel, `key` the int64 list, `value`
   * any JSON value. Resolves true once the server took it, false if the hub
   * stopped first; rejects (and logs) only when the server refused this
   * notify. Bad input throws at the call, before anything is queued:
   * `InvalidTopicError`, `InvalidEventError` (key), `SerializationError`
   * (value), `PayloadTooLargeError`, `QueueFullError`, `TransportClosedError`.
   */
  notify(
    topic: string,
    key?: PgKeyInput,
    value?: unknown,
    options: PgNotifyOptions = {},
  ): Promise<boolean> {
    validateTopic(topic);
    const normalized = normalizeKey(key);
    const json = value === undefined || value === null ? undefined : jsonCodec.encode(value);
    return this.notifyPayload(topic, encodePayload(normalized, json), options);
  }

  /**
   * Sends a payload already encoded (by `encodeEvent`), with the checks of
   * `notify` for topic, size, queue and state.
   */
  notifyPayload(topic: string, payload: string, options: PgNotifyOptions = {}): Promise<boolean> {
    validateTopic(topic);
    this.checkSize(payload);
    if (this.stopRequested) throw new TransportClosedError('pg hub is stopped');
    if (options.client) return this.notifyOn(options.client, topic, payload, options.confirm);
    if (this.queue.length >= this.maxQueue) throw new QueueFullError('pg notify', this.maxQueue);
    const confirm = options.confirm;
    const promise = new Promise<boolean>((resolve, reject) => {
      this.enqueue({
        topic,
        payload,
        settle: (sent, error) => {
          this.confirm(confirm, sent);
          if (error) reject(error);
          else resolve(sent);
        },
      });
    });
    return handled(promise);
  }

  /**
   * Queues many encoded payloads for one topic, in order, and resolves once
   * every one settled, with one outcome each: true (sent), false (the hub
   * stopped first) or the error that refused it (too large, queue full, the
   * server). Never rejects; a bad topic throws at the call. One promise per
   * call rather than per notify: the EventsModule transport's path.
   * `distinct`: the caller guarantees no payload equals another queued one
   * (each carries a unique id), so batches skip the folding check.
   */
  notifyPayloads(
    topic: string,
    payloads: readonly string[],
    options: { distinct?: boolean } = {},
  ): Promise<(boolean | Error)[]> {
    validateTopic(topic);
    const outcomes = new Array<boolean | Error>(payloads.length);
    let pending = 0;
    let done!: () => void;
    const all = new Promise<void>(resolve => (done = resolve));
    for (let i = 0; i < payloads.length; i++) {
      const payload = payloads[i];
      try {
        this.checkSize(payload);
        if (this.stopRequested) throw new TransportClosedError('pg hub is stopped');
        if (this.queue.length >= this.maxQueue)
          throw new QueueFullError('pg notify', this.maxQueue);
      } catch (error) {
        outcomes[i] = error as Error;
        continue;
      }
      pending++;
      this.enqueue({
        topic,
        payload,
        distinct: options.distinct,
        settle: (sent, error) => {
          outcomes[i] = error ?? sent;
          if (--pending === 0) done();
        },
      });
    }
    if (pending === 0) return Promise.resolve(outcomes);
    return all.then(() => outcomes);
  }

  private checkSize(payload: string): void {
    // A payload from encodeEvent is pure ASCII: its length is its size in bytes.
    const size =
      payload.length > this.maxPayloadBytes / 3 ? Buffer.byteLength(payload) : payload.length;
    if (size > this.maxPayloadBytes) throw new PayloadTooLargeError(size, this.maxPayloadBytes);
  }

  private enqueue(item: Outbound): void {
    this.queue.push(item);
    if (this.queue.length > this.counters.q2Max) this.counters.q2Max = this.queue.length;
    // Start sending on the next microtask, so a burst of notifies made in one
    // turn of the event loop goes out as one batch.
    if (!this.pumpScheduled) {
      this.pumpScheduled = true;
      queueMicrotask(() => {
        this.pumpScheduled = false;
        this.pump();
      });
    }
  }

  /** The hub's counters. */
  stats(): PgHubStats {
    return { ...this.counters, queued: this.queue.length, consumerCount: this.consumers.size };
  }

  // ---------------------------------------------------------------- sending

  private async notifyOn(
    client: NonNullable<PgNotifyOptions['client']>,
    topic: string,
    payload: string,
    confirm: PgNotifyOptions['confirm'],
  ): Promise<boolean> {
    try {
      await client.query(SQL_NOTIFY_ONE, [topic, payload]);
    } catch (error) {
      this.counters.notifyFailCount++;
      this.confirm(confirm, false);
      throw error;
    }
    this.counters.notifyCount++;
    this.confirm(confirm, true);
    return true;
  }

  private confirm(hook: ((sent: boolean) => void) | undefined, sent: boolean): void {
    if (!hook) return;
    try {
      hook(sent);
    } catch (error) {
      this.counters.hookErrorCount++;
      this.logger.error(`pg hub ${this.name}: confirm hook threw: ${describe(error)}`);
    }
  }

  private pump(): void {
    if (this.sending || this.retryTimer || this.queue.length === 0) return;
    if (this.currentState !== 'connected') return;
    this.sending = this.sendLoop().finally(() => {
      this.sending = undefined;
      // Notifies queued while the last batch was settling go out now.
      if (this.currentState === 'connected') this.pump();
      if (!this.sending) this.notifyDrained();
    });
  }

  /**
   * Takes the next batch from the head: up to `batchSize` notifies, cut
   * before a topic+payload pair already in it, because PostgreSQL folds
   * identical pairs of one transaction into one notification.
   */
  private nextBatch(): Outbound[] {
    if (this.singles > 0 || this.queue.length === 1) return [this.queue.at(0)];
    const batch: Outbound[] = [];
    // By payload alone: the same payload on two topics also ends the batch,
    // which costs a round trip but never a notification.
    const seen = new Set<string>();
    const limit = Math.min(this.batchSize, this.queue.length);
    for (let i = 0; i < limit; i++) {
      const item = this.queue.at(i);
      if (!item.distinct) {
        if (seen.has(item.payload)) break;
        seen.add(item.payload);
      }
      batch.push(item);
    }
    return batch;
  }

  private async sendLoop(): Promise<void> {
    while (this.queue.length > 0 && this.currentState === 'connected') {
      const batch = this.nextBatch();
      this.counters.notifyBatchCount++;
      try {
        await this.sendBatch(batch);
      } catch (error) {
        if (isConnectionError(error)) {
          // The database went away under us: the batch stays at the head and
          // goes out after the next connect, or after reconnectMs if the LISTEN
          // connection never noticed.
          this.logger.warn(`pg hub ${this.name}: notify failed, will retry: ${describe(error)}`);
          this.retryTimer = setTimeout(() => {
            this.retryTimer = undefined;
            this.pump();
          }, this.jitter());
          this.retryTimer.unref?.();
          return;
        }
        if (batch.length > 1) {
          // One bad notify must not sink its neighbours: retry them one by one.
          this.counters.notifyRetryCount++;
          this.singles = batch.length;
          continue;
        }
        const item = this.queue.shift();
        if (this.singles > 0) this.singles--;
        this.counters.notifyFailCount++;
        this.logger.error(
          `pg hub ${this.name}: notify on ${item.topic} refused: ${describe(error)}`,
        );
        item.settle(false, error as Error);
        continue;
      }
      for (let i = 0; i < batch.length; i++) this.queue.shift();
      if (this.singles > 0) this.singles--;
      this.counters.notifyCount += batch.length;
      for (const item of batch) item.settle(true);
    }
  }

  private sendBatch(batch: readonly Outbound[]): Promise<QueryResult> {
    if (batch.length === 1)
      return this.pool.query(SQL_NOTIFY_ONE, [batch[0].topic, batch[0].payload]);
    // The arrays travel as JSON text: V8's JSON.stringify escapes strings far
    // faster than node-postgres builds an array literal.
    const topic = batch[0].topic;
    const payloads = new Array<string>(batch.length);
    let oneTopic = true;
    for (let i = 0; i < batch.length; i++) {
      payloads[i] = batch[i].payload;
      if (batch[i].topic !== topic) oneTopic = false;
    }
    if (oneTopic)
      return this.pool.query(SQL_NOTIFY_MANY_ONE_TOPIC, [topic, JSON.stringify(payloads)]);
    const topics = batch.map(item => item.topic);
    return this.pool.query(SQL_NOTIFY_MANY, [JSON.stringify(topics), JSON.stringify(payloads)]);
  }

  private notifyDrained(): void {
    if (this.queue.length > 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const waiter of waiters) waiter();
  }

  private waitDrained(timeoutMs: number): Promise<void> {
    if (this.queue.length === 0 && !this.sending) return Promise.resolve();
    return new Promise(resolve => {
      const timer = setTimeout(done, timeoutMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.drainWaiters.push(done);
    });
  }

  // ------------------------------------------------------------- connection

  private setState(state: PgHubState, reason?: string): void {
    if (this.currentState === state) return;
    this.currentState = state;
    this.emit('state', state, reason);
  }

  private jitter(): number {
    return Math.round(this.reconnectMs * (0.75 + Math.random() * 0.5));
  }

  private scheduleConnect(delay: number): void {
    if (this.stopRequested || this.connectTimer) return;
    this.connectTimer = setTimeout(() => {
      this.connectTimer = undefined;
      void this.connectOnce();
    }, delay);
  }

  /**
   * The LISTEN connection's settings: the pool's own, but a client of its
   * own, never one of the pool's, so notifies and claims can never take the
   * connection LISTEN needs (or wait for it) whatever the pool's size, and
   * TCP keepalive is on even when your pool was made without it.
   */
  private listenConfig(): ClientConfig {
    const options = (this.pool as Pool & { options?: ClientConfig }).options ?? {};
    return {
      ...options,
      application_name: this.applicationName + '/listen',
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
    };
  }

  /** One attempt to bring the LISTEN connection up; schedules the next on failure. */
  private async connectOnce(): Promise<void> {
    if (this.stopRequested) return;
    const connection = ++this.connection;
    const client = new pg.Client(this.listenConfig());
    client.on('notification', (message: Notification) => {
      if (connection === this.connection) this.receive(message);
    });
    client.on('error', (error: Error) => this.lose(connection, client, describe(error)));
    client.on('end', () => this.lose(connection, client, 'connection ended'));
    const topics = [...this.wanted.keys()];
    // Topics are validated identifiers, quoted: LISTEN takes no parameters.
    const statements = ['UNLISTEN *', ...topics.map(topic => `LISTEN ${quoteIdent(topic)}`)];
    try {
      await client.connect();
      // Also set here: a connectionString's own application_name wins over the config's.
      await client.query("SELECT pg_catalog.set_config('application_name', $1, false)", [
        this.applicationName + '/listen',
      ]);
      await client.query(statements.join('; '));
    } catch (error) {
      this.counters.connectFailCount++;
      this.counters.listenFailCount += topics.length;
      this.logger.warn(`pg hub ${this.name}: LISTEN connection failed: ${describe(error)}`);
      if (connection === this.connection) this.connection++;
      closeClient(client);
      this.scheduleConnect(this.jitter());
      return;
    }
    if (this.stopRequested) {
      closeClient(client);
      return;
    }
    if (connection !== this.connection) {
      // Lost between the LISTEN and here: lose() closed it already.
      this.scheduleConnect(0);
      return;
    }
    this.listenClient = client;
    this.listening.clear();
    for (const topic of topics) this.listening.add(topic);
    this.counters.listenCount += topics.length;
    this.counters.connectCount++;
    const first = !this.everConnected;
    this.everConnected = true;
    if (this.lostAt !== undefined) {
      const downMs = Date.now() - this.lostAt;
      this.lostAt = undefined;
      this.logger.log(
        `pg hub ${this.name}: LISTEN connection back after ${downMs} ms; ` +
          'notifications sent while it was down may be lost',
      );
    }
    this.startHeartbeat(connection, client);
    this.setState('connected');
    this.broadcast(first ? 'connect' : 'reconnect');
    this.settleSubscribes();
    if (first) {
      const waiters = this.startWaiters;
      this.startWaiters = [];
      for (const waiter of waiters) waiter.resolve();
    }
    void this.syncListens();
    // Notifies that failed during the outage go out now, not at their retry timer.
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.pump();
  }

  /** The LISTEN connection failed: announce it and reconnect. */
  private lose(connection: number, client: Client, reason: string): void {
    if (connection !== this.connection) return;
    this.connection++;
    this.stopHeartbeat();
    // Destroyed, not ended: a black-holed peer never answers a goodbye.
    closeClient(client);
    // Still connecting: connectOnce sees the changed connection number and retries.
    if (this.listenClient !== client) return;
    this.listenClient = undefined;
    this.listening.clear();
    if (this.stopRequested) return;
    this.counters.disconnectCount++;
    this.lostAt = Date.now();
    this.logger.warn(
      `pg hub ${this.name}: LISTEN connection lost (${reason}); ` +
        'reconnecting, notifications sent until it is back are lost',
    );
    this.setState('reconnecting', reason);
    this.broadcast('disconnect');
    // The server may just have dropped this session (a restart, a terminate):
    // try again at once, then every reconnectMs.
    this.scheduleConnect(0);
  }

  /**
   * Every `heartbeatMs` a `SELECT 1` on the LISTEN connection, which must be
   * answered within `heartbeatTimeoutMs`: a peer gone silent (no RST: a
   * black hole, a frozen VM) is noticed within heartbeatMs +
   * heartbeatTimeoutMs. TCP keepalive alone would take minutes.
   */
  private startHeartbeat(connection: number, client: Client): void {
    this.stopHeartbeat();
    this.heartbeatPending = false;
    let syncTicks = 0;
    this.heartbeatTimer = setInterval(() => {
      if (this.heartbeatPending) return;
      // One query at a time on this connection: a LISTEN running is a
      // heartbeat of its own, unless it outlives a whole interval.
      if (this.syncing) {
        if (++syncTicks > 1)
          this.lose(connection, client, `LISTEN unanswered for ${this.heartbeatMs} ms`);
        return;
      }
      syncTicks = 0;
      this.heartbeatPending = true;
      this.heartbeatTimeout = setTimeout(
        () =>
          this.lose(
            connection,
            client,
            `no answer to the heartbeat within ${this.heartbeatTimeoutMs} ms`,
          ),
        this.heartbeatTimeoutMs,
      );
      this.heartbeatTimeout.unref?.();
      this.heartbeat = client.query('SELECT 1').then(
        () => {
          if (this.heartbeatTimeout) clearTimeout(this.heartbeatTimeout);
          this.heartbeatTimeout = undefined;
          this.heartbeatPending = false;
        },
        error => this.lose(connection, client, `heartbeat failed: ${describe(error)}`),
      );
    }, this.heartbeatMs);
    this.heartbeatTimer.unref?.();
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.heartbeatTimeout) clearTimeout(this.heartbeatTimeout);
    this.heartbeatTimer = this.heartbeatTimeout = undefined;
    this.heartbeatPending = false;
  }

  // --------------------------------------------------------------- receiving

  private receive(message: Notification): void {
    this.counters.rxEventCount++;
    const consumers = this.wanted.get(message.channel);
    if (!consumers || consumers.size === 0) {
      this.counters.rxUnroutableCount++;
      return;
    }
    let raw: PgHubRawEvent;
    let event: PgHubEvent | undefined;
    try {
      const { key, json } = splitPayload(message.payload ?? '');
      Object.freeze(key);
      raw = Object.freeze({ topic: message.channel, key, json, processId: message.processId });
      // Parsed once, and only when a consumer wants values; deep-frozen, as
      // pg-hub does, because every consumer of the topic gets this same
      // object: one consumer can never change what the next one sees.
      for (const consumer of consumers) {
        if (consumer.raw) continue;
        event = Object.freeze({
          topic: message.channel,
          key,
          value: deepFreeze(parseValue(json)),
          processId: message.processId,
        });
        break;
      }
    } catch (error) {
      this.counters.rxErrorCount++;
      const reason = error instanceof PgDecodeError ? error.reason : describe(error);
      this.logger.warn(
        `pg hub ${this.name}: dropped a notification on ${message.channel} from pid ${message.processId}: ${reason}`,
      );
      return;
    }
    for (const consumer of consumers.size === 1 ? consumers : [...consumers]) {
      this.call(consumer, consumer.raw ? raw : event!);
    }
  }

  private call(consumer: PgConsumer, event: PgHubEvent | PgHubRawEvent | PgHubAdvisoryEvent): void {
    try {
      const result = (consumer.hook as (event: unknown, consumer: PgConsumer) => unknown)(
        event,
        consumer,
      );
      if (result instanceof Promise) result.catch(error => this.hookFailed(error));
    } catch (error) {
      this.hookFailed(error);
    }
  }

  private hookFailed(error: unknown): void {
    this.counters.hookErrorCount++;
    this.logger.error(
      `pg hub ${this.name}: consumer hook failed: ${describe(error)}`,
      error instanceof Error ? error.stack : undefined,
    );
  }

  private broadcast(action: PgHubAction): void {
    const event = advisory(action);
    for (const consumer of [...this.consumers]) this.call(consumer, event);
  }

  // ------------------------------------------------------------ subscribing

  private subscribeConsumer(consumer: PgConsumer, topics: readonly string[]): Promise<void> {
    topics.forEach(validateTopic);
    if (consumer.closed || !this.consumers.has(consumer)) {
      return handled(Promise.reject(new TransportClosedError('pg consumer is closed')));
    }
    const waits: Promise<void>[] = [];
    for (const topic of topics) {
      if (consumer.subscribed.has(topic)) continue;
      consumer.subscribed.add(topic);
      this.counters.subscribeCount++;
      let set = this.wanted.get(topic);
      if (!set) this.wanted.set(topic, (set = new Set()));
      set.add(consumer);
      waits.push(
        new Promise<void>((resolve, reject) => {
          this.pendingSubscribes.push({
            consumer,
            topic,
            done: error => (error ? reject(error) : resolve()),
          });
        }),
      );
    }
    this.settleSubscribes();
    void this.syncListens();
    return handled(Promise.all(waits).then(noop));
  }

  /**
   * Announces each pending subscription whose topic is LISTENed now, once.
   * A hook may subscribe (or make) consumers from inside its advisory, which
   * calls back in here: the ready entries leave the list before any hook
   * runs, and a call made while hooks run only asks for another pass, so no
   * entry is ever seen by two passes (the daisy-chain bug: hooks re-entering
   * a pass announced earlier entries again, quadratically).
   */
  private settleSubscribes(): void {
    if (this.settling) {
      this.settleAgain = true;
      return;
    }
    this.settling = true;
    try {
      do {
        this.settleAgain = false;
        if (this.currentState !== 'connected') return;
        const ready: typeof this.pendingSubscribes = [];
        const still: typeof this.pendingSubscribes = [];
        for (const pending of this.pendingSubscribes) {
          if (!pending.consumer.subscribed.has(pending.topic) || this.listening.has(pending.topic))
            ready.push(pending);
          else still.push(pending);
        }
        this.pendingSubscribes = still;
        for (const pending of ready) {
          if (!pending.consumer.subscribed.has(pending.topic)) {
            pending.done(
              new TransportClosedError(`unsubscribed from ${pending.topic} before its LISTEN ran`),
            );
            continue;
          }
          this.call(pending.consumer, advisory('subscribe', pending.topic));
          pending.done();
        }
      } while (this.settleAgain);
    } finally {
      this.settling = false;
    }
  }

  private unsubscribeConsumer(consumer: PgConsumer, topics: readonly string[]): void {
    for (const topic of topics) {
      if (!consumer.subscribed.delete(topic)) continue;
      const set = this.wanted.get(topic);
      set?.delete(consumer);
      if (set?.size === 0) this.wanted.delete(topic);
    }
    this.failPendingOf(consumer, false);
    void this.syncListens();
  }

  private closeConsumer(consumer: PgConsumer): void {
    if (!this.consumers.delete(consumer)) return;
    this.unsubscribeConsumer(consumer, [...consumer.subscribed]);
    consumer.markClosed();
    this.failPendingOf(consumer, true);
    queueMicrotask(() => this.call(consumer, advisory('close')));
  }

  private failPendingOf(consumer: PgConsumer, all: boolean): void {
    this.pendingSubscribes = this.pendingSubscribes.filter(pending => {
      if (pending.consumer !== consumer) return true;
      if (!all && consumer.subscribed.has(pending.topic)) return true;
      pending.done(
        new TransportClosedError(`pg consumer left ${pending.topic} before its LISTEN ran`),
      );
      return false;
    });
  }

  /**
   * Brings the LISTENs of the connection in line with what consumers want,
   * one command at a time on the LISTEN connection (pg-hub's Q1).
   */
  private async syncListens(): Promise<void> {
    if (this.syncing) return;
    this.syncing = true;
    try {
      for (;;) {
        const client = this.listenClient;
        if (!client || this.currentState !== 'connected') return;
        const connection = this.connection;
        const toListen = [...this.wanted.keys()].filter(topic => !this.listening.has(topic));
        const toUnlisten = [...this.listening].filter(topic => !this.wanted.has(topic));
        const pending = toListen.length + toUnlisten.length;
        if (pending > this.counters.q1Max) this.counters.q1Max = pending;
        if (pending === 0) return;
        const statements = [
          ...toUnlisten.map(topic => `UNLISTEN ${quoteIdent(topic)}`),
          ...toListen.map(topic => `LISTEN ${quoteIdent(topic)}`),
        ];
        try {
          if (this.heartbeatPending) await this.heartbeat;
          await client.query(statements.join('; '));
        } catch (error) {
          this.counters.listenFailCount += toListen.length;
          this.counters.unlistenFailCount += toUnlisten.length;
          this.logger.warn(`pg hub ${this.name}: LISTEN/UNLISTEN failed: ${describe(error)}`);
          // A failed LISTEN leaves the session's channels unknown: start afresh.
          this.lose(connection, client, `LISTEN failed: ${describe(error)}`);
          return;
        }
        if (connection !== this.connection) return;
        for (const topic of toUnlisten) this.listening.delete(topic);
        for (const topic of toListen) this.listening.add(topic);
        this.counters.listenCount += toListen.length;
        this.counters.unlistenCount += toUnlisten.length;
        this.settleSubscribes();
      }
    } finally {
      this.syncing = false;
    }
  }

  // --------------------------------------------------------------- stopping

  private async shutdown(wait: boolean): Promise<void> {
    if (wait && this.currentState === 'connected') {
      this.stopRequested = true;
      await this.waitDrained(this.stopTimeoutMs);
    }
    this.stopRequested = true;
    this.setState('stopping');
    if (this.connectTimer) clearTimeout(this.connectTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.connectTimer = this.retryTimer = undefined;
    this.stopHeartbeat();
    await this.sending;
    for (const item of this.queue.drain()) {
      this.counters.notifyCancelCount++;
      item.settle(false);
    }
    const closed = new TransportClosedError('pg hub stopped');
    for (const waiter of this.startWaiters) waiter.reject(closed);
    this.startWaiters = [];
    for (const pending of this.pendingSubscribes) pending.done(closed);
    this.pendingSubscribes = [];
    this.connection++;
    const client = this.listenClient;
    this.listenClient = undefined;
    this.listening.clear();
    if (client) closeClient(client);
    const event = advisory('stop');
    for (const consumer of [...this.consumers]) {
      consumer.markClosed();
      this.call(consumer, event);
    }
    this.consumers.clear();
    this.wanted.clear();
    this.pool.off('error', this.onPoolError);
    if (this.ownsPool)
      await this.pool
        .end()
        .catch(error => this.logger.warn(`pg hub ${this.name}: ${describe(error)}`));
    this.setState('stopped');
  }
}

/** The value of a payload's JSON text; throws PgDecodeError for bad JSON. */
function parseValue(json: string | undefined): unknown {
  if (json === undefined) return null;
  try {
    return JSON.parse(json);
  } catch (error) {
    throw new PgDecodeError(`bad JSON value (${(error as Error).message})`);
  }
}

/** Closes the LISTEN client at once (its socket destroyed: a black-holed peer never answers). */
function closeClient(client: Client): void {
  const internals = client as unknown as PgClientInternals;
  internals.connection?.stream?.destroy?.();
  client.end().catch(noop);
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!(typeof value === 'number' && value > 0 && Number.isFinite(value))) {
    throw new RangeError(`${name} must be a positive number`);
  }
  return value;
}

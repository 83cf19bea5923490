// pg-hub for Node: the class that joins the hub's parts and owns its
// lifecycle. About 420 lines, mostly the public API and its TSDoc; the parts
// (LISTEN connection, consumers, notifier) are files of their own.
import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { Pool } from 'pg';
import { skip, type Observable } from 'rxjs';
import { describeError } from '../../common/describe-error.js';
import { PayloadTooLargeError, QueueFullError, TransportClosedError } from '../../common/errors.js';
import { jsonCodec } from '../../common/json.codec.js';
import { logLine } from '../../common/log-line.js';
import type { HeraldLogger } from '../../common/logger.js';
import { describeValue } from '../../common/options.validation.js';
import { StateMachine } from '../../common/state-machine.js';
import { encodePayload, normalizeKey, validateTopic, type PgKeyInput } from './pg.codec.js';
import {
  flattenTopics,
  type PgConsumer,
  type PgHubHook,
  type PgHubRawHook,
} from './pg.consumer.js';
import { PgConsumerSet, handled } from './pg.consumer-set.js';
import { PgListenConnection } from './pg.listen-connection.js';
import { PgNotifier, type PgOutbound } from './pg.notifier.js';
import { resolvePgHubOptions, type PgHubOptions, type ResolvedPgHubOptions } from './pg.options.js';
import { SQL_NOTIFY_ONE } from './pg.constants.js';
import { payloadLength, payloadText, type PgPayload } from './pg.packed-payloads.js';

import type { PgHubState, PgHubStats, PgHubStatus, PgNotifyOptions } from './pg.hub.types.js';

export { isConnectionError } from './pg.notifier.js';
export type { PgHubState, PgHubStats, PgHubStatus, PgNotifyOptions } from './pg.hub.types.js';

const HUB_TRANSITIONS: { readonly [S in PgHubState]: readonly PgHubState[] } = {
  idle: ['connecting', 'stopping'],
  connecting: ['connected', 'stopping'],
  connected: ['reconnecting', 'stopping'],
  reconnecting: ['connected', 'stopping'],
  stopping: ['stopped'],
  stopped: [],
};

/**
 * The outcomes of one notifyPayloads() call: one promise for the call, and
 * its notifies settle into it by index (no closure or promise per notify).
 */
class NotifyGroup {
  readonly outcomes: (boolean | Error)[];
  pending = 0;
  private done?: (outcomes: (boolean | Error)[]) => void;

  constructor(size: number) {
    this.outcomes = new Array<boolean | Error>(size);
  }

  settle(index: number, outcome: boolean | Error): void {
    this.outcomes[index] = outcome;
    if (--this.pending === 0) this.done?.(this.outcomes);
  }

  /** Resolves once every queued notify settled (at once when none was queued). */
  settled(): Promise<(boolean | Error)[]> {
    if (this.pending === 0) return Promise.resolve(this.outcomes);
    return new Promise(resolve => (this.done = resolve));
  }
}

/** A queued notify of a {@link NotifyGroup}. */
class GroupedNotify implements PgOutbound {
  constructor(
    readonly topic: string,
    readonly payload: PgPayload,
    readonly distinct: boolean,
    private readonly group: NotifyGroup,
    private readonly index: number,
  ) {}

  settle(sent: boolean, error?: Error): void {
    this.group.settle(this.index, error ?? sent);
  }
}

/**
 * pg-hub for Node: events over PostgreSQL LISTEN/NOTIFY. A topic is a
 * channel, a key an ordered list of int64, a value any JSON value, all in
 * one pure-ASCII payload (`e<keys>[:json]`) that Go and Node pg-hub
 * services read and write.
 *
 * The parts: the LISTEN connection (a client of its own, reconnected and
 * watched by a heartbeat), the consumers and their subscriptions, the
 * notifier (the pool, many notifies per statement, one batch in flight so a
 * sender's order holds). This class joins them and owns the lifecycle:
 * `status$` reports every state change (the `state` event is its
 * deprecated adapter).
 * @publicApi
 */
export class PgHub extends EventEmitter {
  readonly name: string;
  readonly pool: Pool;
  /** Every state change with its reason; replays the current one. */
  readonly status$: Observable<PgHubStatus>;
  private readonly options: ResolvedPgHubOptions;
  private readonly ownsPool: boolean;
  private readonly logger: HeraldLogger;
  private readonly machine: StateMachine<PgHubState>;
  private readonly listen: PgListenConnection;
  private readonly consumers: PgConsumerSet;
  private readonly notifier: PgNotifier;
  private stopRequested = false;
  private starting?: Promise<void>;
  private startWaiters: { resolve(): void; reject(error: Error): void }[] = [];
  private stopping?: Promise<void>;

  private readonly onPoolError = (error: Error): void => {
    this.logger.warn(
      logLine(
        'pg',
        'hub-pool-idle-error',
        `an idle pool connection failed: ${describeError(error)}`,
        {
          hub: this.name,
        },
      ),
    );
  };

  /** Throws `InvalidOptionsError` naming a bad or unknown option. */
  constructor(options: PgHubOptions = {}) {
    super();
    const resolved = (this.options = resolvePgHubOptions(options));
    this.name = resolved.name;
    this.logger = resolved.logger;
    if (resolved.pool) {
      this.pool = resolved.pool;
      this.ownsPool = false;
    } else {
      this.pool = new pg.Pool({
        connectionString: resolved.connectionString,
        max: resolved.poolSize,
        application_name: resolved.applicationName,
        keepAlive: true,
        connectionTimeoutMillis: Math.max(5000, resolved.reconnectMs),
        ...resolved.poolConfig,
      });
      this.ownsPool = true;
    }
    this.pool.on('error', this.onPoolError);
    this.machine = new StateMachine<PgHubState>(
      `pg hub ${this.name}`,
      'idle',
      HUB_TRANSITIONS,
      this.logger,
    );
    this.status$ = this.machine.status$;
    // @deprecated adapter: the `state` event, fed from status$ only.
    this.status$.pipe(skip(1)).subscribe(change => this.emit('state', change.state, change.reason));
    const isConnected = (): boolean => this.machine.state === 'connected';
    this.consumers = new PgConsumerSet(
      {
        isConnected,
        isListening: topic => this.listen.listening.has(topic),
        syncListens: () => void this.listen.sync(),
      },
      this.logger,
      this.name,
    );
    this.listen = new PgListenConnection(
      { ...resolved, pool: this.pool },
      {
        wantedTopics: () => this.consumers.wantedTopics(),
        isStopping: () => this.stopRequested,
        onNotification: message => this.consumers.receive(message),
        onConnected: first => this.connected(first),
        onLost: reason => {
          this.machine.setState('reconnecting', reason);
          this.consumers.broadcast('disconnect');
        },
        onListened: () => this.consumers.settle(),
      },
    );
    this.notifier = new PgNotifier(
      this.pool,
      resolved.batchSize,
      { isConnected, retryDelay: () => this.listen.jitter() },
      this.logger,
      this.name,
    );
  }

  /** The current state (a read; `status$` reports every change). */
  get state(): PgHubState {
    return this.machine.state;
  }

  /** Backend pid of the LISTEN connection while connected. */
  get listenProcessId(): number | undefined {
    return this.listen.processId;
  }

  /** The topics LISTENed on the current connection. */
  get listeningTopics(): readonly string[] {
    return [...this.listen.listening];
  }

  /**
   * Asks the LISTEN connection for its `pg_listening_channels()` (a
   * diagnostic: what the server really delivers to this hub).
   * Rejects when not connected.
   */
  async listeningChannels(): Promise<string[]> {
    const client = this.listen.current;
    if (!client) throw new TransportClosedError('pg hub is not connected');
    const result = await client.query<{ channel: string }>(
      'SELECT pg_listening_channels() AS channel',
    );
    return result.rows.map(row => row.channel).sort();
  }

  /** The largest payload this hub sends, in bytes. */
  get payloadLimit(): number {
    return this.options.maxPayloadBytes;
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
        this.machine.setState('connecting');
        this.listen.open();
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
    if (typeof hook !== 'function') {
      throw new TypeError(
        `PgHub: a consumer's hook must be a function (got ${describeValue(hook)})`,
      );
    }
    const flat = flattenTopics(topics);
    flat.forEach(validateTopic);
    if (this.stopRequested) throw new TransportClosedError('pg hub is stopped');
    return this.consumers.add(hook, raw, flat);
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
   * `notify` for topic, size, queue and state. It does not check that the
   * payload is a pg-hub event: anything within the size limit goes out.
   */
  notifyPayload(topic: string, payload: string, options: PgNotifyOptions = {}): Promise<boolean> {
    validateTopic(topic);
    this.checkSize(payload);
    if (this.stopRequested) throw new TransportClosedError('pg hub is stopped');
    if (options.client) return this.notifyOn(options.client, topic, payload, options.confirm);
    this.checkQueue();
    const confirm = options.confirm;
    const promise = new Promise<boolean>((resolve, reject) => {
      this.notifier.enqueue({
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
   * `ascii`: the caller guarantees every payload is pure ASCII (as the
   * envelope codec's are: escapeJson writes anything else as `\uXXXX`), so
   * its length is its size in bytes and the size check does not measure
   * it (which would flatten a concatenated one into a copy). A payload may
   * come in {@link PgPayloadParts} (head, data, `}`): they are written into
   * the statement part by part, so the data's text is never copied in the
   * heap (issue 24: at 4 KB that copy, alive while the notify waited, was
   * herald's extra cost per byte, in the garbage collector).
   */
  notifyPayloads(
    topic: string,
    payloads: readonly PgPayload[],
    options: { distinct?: boolean; ascii?: boolean } = {},
  ): Promise<(boolean | Error)[]> {
    validateTopic(topic);
    const group = new NotifyGroup(payloads.length);
    const distinct = options.distinct === true;
    const ascii = options.ascii === true;
    for (let i = 0; i < payloads.length; i++) {
      const payload = payloads[i];
      try {
        this.checkSize(payload, ascii);
        if (this.stopRequested) throw new TransportClosedError('pg hub is stopped');
        this.checkQueue();
      } catch (error) {
        group.outcomes[i] = error as Error;
        continue;
      }
      group.pending++;
      this.notifier.enqueue(new GroupedNotify(topic, payload, distinct, group, i));
    }
    return group.settled();
  }

  /** The hub's counters. */
  stats(): PgHubStats {
    return {
      ...this.consumers.counters,
      ...this.listen.counters,
      ...this.notifier.counters,
      queued: this.notifier.length,
      consumerCount: this.consumers.size,
      heartbeatAgeMs: this.listen.heartbeatAgeMs,
    };
  }

  /** `ascii`: the caller guarantees a pure ASCII payload (see {@link notifyPayloads}). */
  private checkSize(payload: PgPayload, ascii = false): void {
    const limit = this.options.maxPayloadBytes;
    // A payload from encodeEvent is pure ASCII: its length is its size in
    // bytes. Measuring it (Buffer.byteLength) would flatten a concatenated one.
    const length = payloadLength(payload);
    const size = ascii || length <= limit / 3 ? length : Buffer.byteLength(payloadText(payload));
    if (size > limit) throw new PayloadTooLargeError(size, limit);
  }

  private checkQueue(): void {
    if (this.notifier.length >= this.options.maxQueue)
      throw new QueueFullError('pg notify', this.options.maxQueue);
  }

  private async notifyOn(
    client: NonNullable<PgNotifyOptions['client']>,
    topic: string,
    payload: string,
    confirm: PgNotifyOptions['confirm'],
  ): Promise<boolean> {
    try {
      await client.query(SQL_NOTIFY_ONE, [topic, payload]);
    } catch (error) {
      this.notifier.counters.notifyFailCount++;
      this.confirm(confirm, false);
      throw error;
    }
    this.notifier.counters.notifyCount++;
    this.confirm(confirm, true);
    return true;
  }

  private confirm(hook: ((sent: boolean) => void) | undefined, sent: boolean): void {
    if (!hook) return;
    try {
      hook(sent);
    } catch (error) {
      this.consumers.hookFailed(error);
    }
  }

  /** The LISTEN connection is up with every wanted topic LISTENed. */
  private connected(first: boolean): void {
    this.machine.setState('connected');
    this.consumers.broadcast(first ? 'connect' : 'reconnect');
    this.consumers.settle();
    if (first) {
      const waiters = this.startWaiters;
      this.startWaiters = [];
      for (const waiter of waiters) waiter.resolve();
    }
    this.notifier.onConnected();
  }

  private async shutdown(wait: boolean): Promise<void> {
    if (wait && this.machine.state === 'connected') {
      this.stopRequested = true;
      await this.notifier.waitDrained(this.options.stopTimeoutMs);
    }
    this.stopRequested = true;
    this.machine.setState('stopping');
    this.listen.close();
    await this.notifier.stop();
    const closed = new TransportClosedError('pg hub stopped');
    for (const waiter of this.startWaiters) waiter.reject(closed);
    this.startWaiters = [];
    this.consumers.stop(closed);
    this.pool.off('error', this.onPoolError);
    if (this.ownsPool)
      await this.pool.end().catch(error =>
        this.logger.warn(
          logLine('pg', 'hub-pool-end-failed', `ending the pool failed: ${describeError(error)}`, {
            hub: this.name,
          }),
        ),
      );
    this.machine.setState('stopped');
    this.machine.complete();
  }
}

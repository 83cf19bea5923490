import { createHash } from 'node:crypto';
import type { Observable } from 'rxjs';
import { TransportClosedError } from '../../common/errors.js';
import { Fifo } from '../../common/fifo.js';
import { consoleLogger, type HeraldLogger } from '../../common/logger.js';
import type { TransportStatus } from '../../interfaces/transport.interface.js';
import {
  DEFAULT_BUFFER_SIZE,
  DEFAULT_DRAIN_BATCH_SIZE,
  DEFAULT_DRAIN_INITIAL_INTERVAL_MS,
  DEFAULT_DRAIN_MAX_BACKOFF_MS,
  DEFAULT_MAX_LEN,
  DEFAULT_SHUTDOWN_DRAIN_TIMEOUT_MS,
  DEFAULT_WRITE_TIMEOUT_MS,
} from './redis.constants.js';
import {
  isLoadingReplyError,
  isReplyError,
  isTransientReplyError,
  LOADING_RETRY_MS,
  RedisConnection,
  type RedisConnectionOptions,
} from './redis.connection.js';
import {
  clusterReplyOf,
  EmptyStreamError,
  EventDroppedError,
  EventNotWrittenError,
  RedisClusterError,
} from './redis.errors.js';
import { WarningLimiter } from '../../common/warning-limiter.js';
import { encodeStreamEvent, type StreamEvent } from './stream-event.js';
import { Sleeper } from './sleeper.js';
import { InvalidOptionsError } from '../../common/errors.js';

/** Options of {@link StreamPublisher}; defaults are the original's. @publicApi */
export interface StreamPublisherOptions<T = StreamEvent> extends RedisConnectionOptions {
  /** The stream written to. Required, non-empty. */
  stream: string;
  /** Approximate retention, `XADD MAXLEN ~ maxLen`; 0 keeps everything. @default 100000 */
  maxLen?: number;
  /** Events buffered in memory; when full the oldest is dropped. @default 10000 */
  bufferSize?: number;
  /** First pause after a failed write. @default 1000 */
  drainInitialIntervalMs?: number;
  /** Cap of the doubling pause. @default 30000 */
  drainMaxBackoffMs?: number;
  /** How long `close()` keeps draining. @default 5000 */
  shutdownDrainTimeoutMs?: number;
  /** XADDs sent per round trip (one pipeline). @default 1000 */
  drainBatchSize?: number;
  /** A write not answered by then fails and is retried. @default 5000 */
  writeTimeoutMs?: number;
  /**
   * How a batch is sent: `script`, one EVALSHA running XADD per event on
   * the server (far less client CPU); `pipeline`, one XADD command per
   * event. Both keep order and give one result per event; `script` falls
   * back to `pipeline` where scripts are not allowed. @default 'script'
   */
  writeMode?: 'script' | 'pipeline';
  /** Turns an item into XADD fields. @default the original's event layout ({@link encodeStreamEvent}) */
  encode?: (item: T) => readonly string[];
  /**
   * Write on this connection instead of opening one (it is then not closed
   * by `close()`). It must come from {@link RedisConnection}, which turns off
   * ioredis's offline queue and resends.
   */
  connection?: RedisConnection;
}

/** What `close()` reports. @publicApi */
export interface PublisherCloseReport {
  /** Events still buffered (or being written) when the drain gave up. */
  readonly unsent: number;
  readonly written: number;
  readonly dropped: number;
}

/** Who waits for the fate of buffered events: one caller, or one batch of them. */
interface Waiter {
  settle(index: number, result: string | Error): void;
}

class SingleWaiter implements Waiter {
  constructor(
    private readonly resolve: (id: string) => void,
    private readonly reject: (error: Error) => void,
  ) {}

  settle(_index: number, result: string | Error): void {
    if (typeof result === 'string') this.resolve(result);
    else this.reject(result);
  }
}

/** One promise for a whole batch: far fewer allocations than one per event. */
class BatchWaiter implements Waiter {
  readonly results: (string | Error)[];
  private left: number;

  constructor(
    size: number,
    private readonly resolve: (results: readonly (string | Error)[]) => void,
  ) {
    this.results = new Array<string | Error>(size);
    this.left = size;
    if (size === 0) resolve(this.results);
  }

  settle(index: number, result: string | Error): void {
    this.results[index] = result;
    if (--this.left === 0) this.resolve(this.results);
  }
}

interface Pending {
  readonly stream: string;
  readonly fields: readonly string[];
  readonly waiter?: Waiter;
  readonly index: number;
}

/**
 * XADD per event, in order, on the server. KEYS: the streams. ARGV[1]:
 * maxLen (0 = no trimming). Then runs of events that share a stream and
 * field names: the stream's KEYS index, the field count k, the event count,
 * the k names, then k values per event (names are sent once per run, not per
 * event). Returns, one per line, each event's entry id or `!` and the error.
 */
const XADD_BATCH_SCRIPT = `
local maxlen = ARGV[1]
local trim = tonumber(maxlen) > 0
local out = {}
local o = 0
local i = 2
local n = #ARGV
local args = {}
local a = 0
if trim then
  args[1] = 'MAXLEN'; args[2] = '~'; args[3] = maxlen; a = 3
end
args[a + 1] = '*'
while i <= n do
  local key = KEYS[tonumber(ARGV[i])]
  local k = tonumber(ARGV[i + 1])
  local events = tonumber(ARGV[i + 2])
  local names = i + 2
  local v = i + 3 + k
  for j = 1, k do args[a + 2 * j] = ARGV[names + j] end
  for e = 1, events do
    for j = 1, k do
      args[a + 2 * j + 1] = ARGV[v]
      v = v + 1
    end
    local id = redis.pcall('XADD', key, unpack(args, 1, a + 1 + 2 * k))
    o = o + 1
    if type(id) == 'table' and id.err then
      out[o] = '!' .. string.gsub(id.err, '\\n', ' ')
    else
      out[o] = id
    end
  end
  i = v
end
return table.concat(out, '\\n')`;
const XADD_BATCH_SHA = createHash('sha1').update(XADD_BATCH_SCRIPT).digest('hex');

/** Same stream and same field names, in the same order. */
function sameShape(item: Pending, first: Pending): boolean {
  if (item.stream !== first.stream || item.fields.length !== first.fields.length) return false;
  for (let j = 0; j < item.fields.length; j += 2)
    if (item.fields[j] !== first.fields[j]) return false;
  return true;
}

/** An XADD the script reports as refused (Redis's own error text). */
class ScriptReplyError extends Error {
  override name = 'ReplyError';
}

function positive(name: string, value: number, allowZero = false): number {
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new InvalidOptionsError(
      `${name} must be a ${allowZero ? 'non-negative' : 'positive'} number`,
    );
  }
  return value;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Writes events to a Redis stream without ever making the caller wait or
 * fail for Redis trouble (Magistrala's publisher): `publish` puts the event
 * in a bounded buffer (the oldest is dropped when it is full) and a
 * background drainer writes many buffered events per round trip (pipelined
 * `XADD MAXLEN ~`), retrying failures with exponential back-off while
 * keeping their order. The buffer is the only retry mechanism: the
 * connection runs without ioredis's offline queue and resends.
 * @publicApi
 */
export class StreamPublisher<T = StreamEvent> {
  readonly stream: string;
  readonly connection: RedisConnection;
  private readonly ownsConnection: boolean;
  private readonly logger: HeraldLogger;
  private readonly limiter: WarningLimiter;
  private readonly encode: (item: T) => readonly string[];
  private readonly maxLen: number;
  private readonly bufferSize: number;
  private readonly initialIntervalMs: number;
  private readonly maxBackoffMs: number;
  private readonly shutdownDrainTimeoutMs: number;
  private readonly batchSize: number;
  private readonly writeTimeoutMs: number;
  private writeMode: 'script' | 'pipeline';
  private buffer = new Fifo<Pending>();
  /** Failed writes waiting for their retry: always written before the buffer. */
  private retry: Pending[] = [];
  private writing: Pending[] = [];
  private readonly sleeper = new Sleeper();
  private idle?: () => void;
  private stopping = false;
  /** The last failed write met a Redis still loading its data. */
  private loading = false;
  private deadline = Infinity;
  private drainer?: Promise<void>;
  private closing?: Promise<PublisherCloseReport>;
  private readonly disposeReady: () => void;
  private readonly counters = {
    published: 0,
    written: 0,
    dropped: 0,
    failed: 0,
    writeErrors: 0,
    scriptWrites: 0,
    /** Events refused because the server is a Redis Cluster node (MOVED / ASK / CROSSSLOT). */
    clusterRefused: 0,
    unsent: 0,
    bufferHighWater: 0,
  };

  constructor(options: StreamPublisherOptions<T>) {
    if (typeof options?.stream !== 'string' || options.stream === '') throw new EmptyStreamError();
    this.stream = options.stream;
    this.logger = options.logger ?? consoleLogger;
    this.limiter = new WarningLimiter(this.logger);
    this.encode =
      options.encode ?? (encodeStreamEvent as unknown as (item: T) => readonly string[]);
    this.maxLen = positive('maxLen', options.maxLen ?? DEFAULT_MAX_LEN, true);
    this.bufferSize = positive('bufferSize', options.bufferSize ?? DEFAULT_BUFFER_SIZE);
    this.initialIntervalMs = positive(
      'drainInitialIntervalMs',
      options.drainInitialIntervalMs ?? DEFAULT_DRAIN_INITIAL_INTERVAL_MS,
    );
    this.maxBackoffMs = positive(
      'drainMaxBackoffMs',
      options.drainMaxBackoffMs ?? DEFAULT_DRAIN_MAX_BACKOFF_MS,
    );
    this.shutdownDrainTimeoutMs = positive(
      'shutdownDrainTimeoutMs',
      options.shutdownDrainTimeoutMs ?? DEFAULT_SHUTDOWN_DRAIN_TIMEOUT_MS,
      true,
    );
    this.batchSize = positive('drainBatchSize', options.drainBatchSize ?? DEFAULT_DRAIN_BATCH_SIZE);
    this.writeMode = options.writeMode ?? 'script';
    if (this.writeMode !== 'script' && this.writeMode !== 'pipeline') {
      throw new InvalidOptionsError(`writeMode must be 'script' or 'pipeline'`);
    }
    this.writeTimeoutMs = positive(
      'writeTimeoutMs',
      options.writeTimeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS,
    );
    this.ownsConnection = !options.connection;
    // No ioredis commandTimeout: it would arm a timer per XADD; one timer per batch does (see write()).
    this.connection =
      options.connection ??
      new RedisConnection(options, 'publisher', { connectionName: 'herald-publisher' });
    // A connection that comes back ends the back-off at once: buffered events go out now.
    this.disposeReady = this.connection.onReady(() => this.sleeper.interrupt());
    void this.connection.connect();
    this.drainer = this.drain();
  }

  /** The connection's status. */
  get status$(): Observable<TransportStatus> {
    return this.connection.status$;
  }

  /**
   * Queues an event and returns at once; never throws for Redis trouble.
   * When the buffer is full the oldest queued event is dropped (counted and
   * logged). @throws TransportClosedError after `close()`; the encoder's
   * error for an event it cannot lay out.
   */
  publish(item: T, stream: string = this.stream): void {
    this.enqueue({ stream, fields: this.accept(item), index: 0 });
  }

  /**
   * Like {@link publish}, and resolves to the entry id once written. Rejects
   * with {@link EventDroppedError} if the event was pushed out of a full
   * buffer, {@link EventNotWrittenError} if `close()` gave up on it, or the
   * Redis error of a write that cannot succeed (e.g. WRONGTYPE).
   */
  publishAndWait(item: T, stream: string = this.stream): Promise<string> {
    let fields: readonly string[];
    try {
      fields = this.accept(item);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) =>
      this.enqueue({ stream, fields, waiter: new SingleWaiter(resolve, reject), index: 0 }),
    );
  }

  /**
   * Queues many events in order and resolves, once each was written or given
   * up, to one result per event: its entry id, or the error of
   * {@link publishAndWait}. Never rejects for one bad event: an event the
   * encoder refuses gets its error as result. @throws TransportClosedError after `close()`
   */
  publishAll(
    items: readonly T[],
    stream: string = this.stream,
  ): Promise<readonly (string | Error)[]> {
    if (this.stopping) return Promise.reject(new TransportClosedError('publisher is closed'));
    return new Promise(resolve => {
      const waiter = new BatchWaiter(items.length, resolve);
      for (let index = 0; index < items.length; index++) {
        let fields: readonly string[];
        try {
          fields = this.accept(items[index]);
        } catch (error) {
          waiter.settle(index, error instanceof Error ? error : new Error(String(error)));
          continue;
        }
        this.enqueue({ stream, fields, waiter, index });
      }
    });
  }

  private accept(item: T): readonly string[] {
    if (this.stopping) throw new TransportClosedError('publisher is closed');
    const fields = this.encode(item);
    if (fields.length === 0 || fields.length % 2 !== 0) {
      throw new TypeError('encode must return a non-empty [field, value, ...] list');
    }
    return fields;
  }

  private enqueue(pending: Pending): void {
    this.counters.published++;
    if (this.buffer.length >= this.bufferSize) {
      const oldest = this.buffer.shift()!;
      this.counters.dropped++;
      const dropped = this.counters.dropped;
      // Logged for the first drop of a burst and then every 1000th, never per event under saturation.
      if (dropped === 1 || dropped % 1000 === 0) {
        this.logger.warn(
          `stream ${this.stream}: publish buffer full (${this.bufferSize}), dropped the oldest event (${dropped} dropped so far)`,
        );
      }
      oldest.waiter?.settle(oldest.index, new EventDroppedError(this.bufferSize));
    }
    this.buffer.push(pending);
    if (this.buffer.length > this.counters.bufferHighWater)
      this.counters.bufferHighWater = this.buffer.length;
    const idle = this.idle;
    if (idle) {
      this.idle = undefined;
      idle();
    }
  }

  private take(): Pending[] {
    let batch: Pending[];
    if (this.retry.length > 0) {
      batch = this.retry.splice(0, this.batchSize);
    } else {
      batch = [];
    }
    while (batch.length < this.batchSize && this.buffer.length > 0)
      batch.push(this.buffer.shift()!);
    return batch;
  }

  private async drain(): Promise<void> {
    let backoff = 0;
    for (;;) {
      if (this.retry.length === 0 && this.buffer.length === 0) {
        if (this.stopping) return;
        await new Promise<void>(resolve => (this.idle = resolve));
        continue;
      }
      if (this.stopping && Date.now() >= this.deadline) return;
      const batch = this.take();
      this.writing = batch;
      // Not connected (yet, or any more): no point sending; wait for `ready` (which ends the back-off) instead.
      const failed = this.connection.ready ? await this.write(batch) : this.notConnected(batch);
      this.writing = [];
      if (failed.length === 0) {
        backoff = 0;
        continue;
      }
      this.retry = failed.concat(this.retry);
      let wait: number;
      if (this.loading) {
        // Redis is up and loading its data: ask again soon, the load may end any moment.
        wait = LOADING_RETRY_MS;
      } else {
        backoff = backoff === 0 ? this.initialIntervalMs : Math.min(backoff * 2, this.maxBackoffMs);
        wait = backoff;
      }
      const pause = this.stopping ? Math.min(wait, this.deadline - Date.now()) : wait;
      if (pause > 0) await this.sleeper.sleep(pause);
    }
  }

  /**
   * Sends one batch in one round trip and waits for the answers. A batch
   * unanswered within `writeTimeoutMs` means a dead socket: reconnecting
   * rejects its commands, which are then retried.
   */
  private async send(batch: Pending[]): Promise<(string | Error)[]> {
    const timer = setTimeout(() => {
      this.logger.warn(
        `stream ${this.stream}: no answer to ${batch.length} XADD(s) within ${this.writeTimeoutMs} ms, reconnecting`,
      );
      this.connection.client.disconnect(true);
    }, this.writeTimeoutMs);
    try {
      if (this.writeMode === 'script') {
        try {
          const results = await this.sendScript(batch);
          this.counters.scriptWrites++;
          return results;
        } catch (error) {
          // Scripts refused for good (ACLs, a proxy without EVAL): write with a pipeline from now on.
          // Never for a cluster reply: a pipeline's XADDs would be redirected just the same.
          if (
            !isReplyError(error) ||
            isTransientReplyError(error) ||
            clusterReplyOf(error) !== undefined ||
            describe(error).startsWith('NOSCRIPT')
          )
            throw error;
          this.writeMode = 'pipeline';
          this.logger.warn(
            `stream ${this.stream}: cannot run the XADD script (${describe(error)}), using a pipeline`,
          );
        }
      }
      return await this.sendPipeline(batch);
    } catch (error) {
      const cluster = clusterReplyOf(error);
      const failure =
        cluster && cluster !== 'CLUSTERDOWN'
          ? new RedisClusterError(cluster, describe(error))
          : error instanceof Error
            ? error
            : new Error(String(error));
      return batch.map(() => failure);
    } finally {
      clearTimeout(timer);
    }
  }

  /** One pipeline of `XADD MAXLEN ~` commands, one per event. */
  private async sendPipeline(batch: Pending[]): Promise<(string | Error)[]> {
    const pipeline = this.connection.client.pipeline();
    for (const item of batch) {
      if (this.maxLen > 0)
        pipeline.xadd(item.stream, 'MAXLEN', '~', this.maxLen, '*', ...item.fields);
      else pipeline.xadd(item.stream, '*', ...item.fields);
    }
    const replies = (await pipeline.exec()) as [Error | null, unknown][] | null;
    return batch.map((_, i) => {
      const [error, id] = replies?.[i] ?? [new Error('no reply'), null];
      return error ?? String(id);
    });
  }

  /**
   * One EVALSHA running `XADD MAXLEN ~` per event on the server: the same
   * commands in the same order as the pipeline, for a quarter of the client
   * CPU (one command to encode and one reply to parse instead of one each
   * per event).
   */
  private async sendScript(batch: Pending[]): Promise<(string | Error)[]> {
    const keys: string[] = [];
    for (const item of batch) if (!keys.includes(item.stream)) keys.push(item.stream);
    const args: (string | number)[] = [XADD_BATCH_SHA, keys.length, ...keys, this.maxLen];
    for (let start = 0; start < batch.length;) {
      // A run: events with the first one's stream and field names, which go once.
      const first = batch[start];
      const fields = first.fields;
      const k = fields.length / 2;
      args.push(keys.indexOf(first.stream) + 1, k, 0);
      const countAt = args.length - 1;
      for (let j = 0; j < fields.length; j += 2) args.push(fields[j]);
      let end = start;
      while (end < batch.length && sameShape(batch[end], first)) {
        const values = batch[end].fields;
        for (let j = 1; j < values.length; j += 2) args.push(values[j]);
        end++;
      }
      args[countAt] = end - start;
      start = end;
    }
    const client = this.connection.client;
    let replies: unknown;
    try {
      replies = await client.call('EVALSHA', args);
    } catch (error) {
      if (!describe(error).startsWith('NOSCRIPT')) throw error;
      // First use on this server (or after a restart or SCRIPT FLUSH): EVAL loads it.
      args[0] = XADD_BATCH_SCRIPT;
      replies = await client.call('EVAL', args);
    }
    // One string, ids (or `!error`) one per line: one reply to parse instead of one per event.
    const list = typeof replies === 'string' && replies !== '' ? replies.split('\n') : [];
    return batch.map((_, i) => {
      const reply = list[i];
      if (typeof reply !== 'string') return new Error('no reply');
      return reply.startsWith('!') ? new ScriptReplyError(reply.slice(1)) : reply;
    });
  }

  private notConnected(batch: Pending[]): Pending[] {
    this.counters.writeErrors++;
    // Before the first connection this is the normal start-up; afterwards the connection's own error was logged.
    this.logger.debug?.(
      `stream ${this.stream}: not connected, ${batch.length} event(s) wait for the connection`,
    );
    return batch;
  }

  /** Writes a batch in one round trip. @returns the events to retry, in order. */
  private async write(batch: Pending[]): Promise<Pending[]> {
    const results = await this.send(batch);
    const retry: Pending[] = [];
    let firstError: unknown;
    for (let i = 0; i < batch.length; i++) {
      const item = batch[i];
      const result = results[i];
      if (typeof result === 'string') {
        this.counters.written++;
        item.waiter?.settle(item.index, result);
        continue;
      }
      let error = result;
      const cluster = clusterReplyOf(error);
      if (cluster && !(error instanceof RedisClusterError))
        error = new RedisClusterError(cluster, describe(error));
      if (error instanceof RedisClusterError && cluster !== 'CLUSTERDOWN') {
        // Until cluster mode exists, a redirection is a write that cannot succeed here: named, counted, refused.
        this.counters.failed++;
        this.counters.clusterRefused++;
        this.limiter.error(
          `cluster:${cluster}`,
          `stream ${item.stream}: event not written: ${error.message}`,
        );
        item.waiter?.settle(item.index, error);
        continue;
      }
      if (isReplyError(error) && !isTransientReplyError(error)) {
        // A write Redis refuses for good (WRONGTYPE, bad arguments): retrying would block the stream forever.
        this.counters.failed++;
        this.logger.error(
          `stream ${item.stream}: XADD refused, event discarded: ${describe(error)}`,
        );
        item.waiter?.settle(item.index, error);
        continue;
      }
      firstError ??= error;
      retry.push(item);
    }
    this.loading = retry.length > 0 && isLoadingReplyError(firstError);
    if (retry.length > 0) {
      this.counters.writeErrors++;
      if (!this.stopping || Date.now() < this.deadline) {
        this.logger.warn(
          `stream ${this.stream}: ${retry.length} event(s) not written, retrying with back-off: ${describe(firstError)}`,
        );
      }
    }
    return retry;
  }

  /**
   * Stops the drainer after draining for at most `shutdownDrainTimeoutMs`,
   * reports how many events it could not write, closes the connection.
   * Idempotent.
   */
  close(): Promise<PublisherCloseReport> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<PublisherCloseReport> {
    this.stopping = true;
    this.deadline = Date.now() + this.shutdownDrainTimeoutMs;
    this.idle?.();
    this.idle = undefined;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>(resolve => {
      timer = setTimeout(resolve, this.shutdownDrainTimeoutMs);
    });
    await Promise.race([this.drainer, timedOut]);
    clearTimeout(timer);
    // A write still in flight is cut off with the connection and counted as unsent.
    this.sleeper.interrupt();
    this.disposeReady();
    if (this.ownsConnection) this.connection.close();
    await this.drainer;
    const left = [...this.retry, ...this.buffer.drain()];
    this.retry = [];
    for (const pending of left) pending.waiter?.settle(pending.index, new EventNotWrittenError());
    this.counters.unsent = left.length;
    if (left.length > 0) {
      this.logger.warn(`stream ${this.stream}: closed with ${left.length} event(s) not written`);
    }
    return { unsent: left.length, written: this.counters.written, dropped: this.counters.dropped };
  }

  /** Counters (`published`, `written`, `dropped`, `failed`, `writeErrors`, `unsent`) and the `buffered` gauge. */
  stats(): Readonly<Record<string, number>> {
    return {
      ...this.counters,
      buffered: this.buffer.length + this.retry.length + this.writing.length,
      connected: this.connection.ready ? 1 : 0,
    };
  }
}

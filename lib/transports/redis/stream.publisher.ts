// One role, one pipeline: buffer -> drainer -> one round trip per batch (script
// or pipeline; two scripts in flight, kept in order by the script's guard) ->
// per-event results -> retry or settle. It stays in one file because the
// steps share the buffer, the writes in flight, the retry queue and the
// back-off state, and split apart would only pass them around; options live
// in stream.publisher.options.ts, the Lua script in redis.scripts.ts.
import { randomUUID } from 'node:crypto';
import { logLine } from '../../common/log-line.js';
import type { Observable } from 'rxjs';
import { describeError, asError } from '../../common/describe-error.js';
import { TransportClosedError } from '../../common/errors.js';
import { Fifo } from '../../common/fifo.js';
import { consoleLogger, type HeraldLogger } from '../../common/logger.js';
import { StateMachine } from '../../common/state-machine.js';
import { WarningLimiter } from '../../common/warning-limiter.js';
import type { TransportStatus } from '../../interfaces/transport.interface.js';
import {
  isLoadingReplyError,
  isReplyError,
  isTransientReplyError,
  LOADING_RETRY_MS,
  checkClusterStream,
  RedisConnection,
} from './redis.connection.js';
import { keyInSlotOf } from './redis.cluster.js';
import {
  clusterReplyOf,
  EventDroppedError,
  EventNotWrittenError,
  RedisClusterError,
  ReplicasNotConfirmedError,
} from './redis.errors.js';
import {
  closeBulk,
  evalPrepared,
  openBulk,
  ScriptCallWriter,
  writeBulk,
  type PreparedScriptCall,
} from './redis.prepared-command.js';
import { isNoScript, isOrderRefusal, XADD_BATCH } from './redis.scripts.js';
import { Sleeper } from './sleeper.js';
import type { StreamEvent } from './stream-event.js';
import {
  resolveStreamPublisherOptions,
  type StreamEntryFields,
  type StreamPublisherOptions,
  type ValueAffix,
} from './stream.publisher.options.js';

export {
  resolveStreamPublisherOptions,
  type StreamEntryFields,
  type StreamPublisherOptions,
  type ValueAffix,
} from './stream.publisher.options.js';

/** The publisher's lifecycle: `close()` drains (bounded), then it is closed. */
export type PublisherState = 'running' | 'draining' | 'closed';

const PUBLISHER_TRANSITIONS: { readonly [S in PublisherState]: readonly PublisherState[] } = {
  running: ['draining'],
  draining: ['closed'],
  closed: [],
};

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

/**
 * An event queued, until its write settles. A class, never an object
 * literal: V8 pretenures a literal's allocation site when a scavenge finds
 * nearly everything it made since the last one alive, and a window of posts
 * (1000 made in one burst, each kept until its write answers) is exactly
 * that: the bus's envelope literal, made and kept the same way, was made in
 * the old generation in every run that went bad (a probe with
 * `%InYoungGeneration`, bench/redis-before-after.ts herald, 60k events: 52,000
 * to 55,000 of 62,000), where it died and kept its strings alive through the
 * scavenges. Constructor calls have no allocation site.
 */
class Pending {
  constructor(
    readonly stream: string,
    /**
     * As encoded: the affixed value without its affix, a value in parts as a
     * list. Undefined with `encodeOnWrite`: {@link item} is encoded at each write.
     */
    readonly fields: StreamEntryFields | undefined,
    readonly affix: ValueAffix | undefined,
    /** With `encodeOnWrite`, the item (else undefined: nothing of it kept but its fields). */
    readonly item: unknown,
    readonly waiter: Waiter | undefined,
    readonly index: number,
  ) {}
}

/**
 * An event its encoder refused when it was about to be written
 * (`encodeOnWrite`): settled with the encoder's own error, never retried.
 */
class NotEncoded {
  constructor(readonly error: Error) {}
}

/** What {@link StreamPublisher.clearEntries} leaves: an event whose values went into the command. */
const WRITTEN: StreamEntryFields = Object.freeze([]);

/** An event's fate after a write: its entry id, the error of its XADD, or its encoder's refusal. */
type WriteResult = string | Error | NotEncoded;

/**
 * `Buffer#write` and `TypedArray#set` called through these: as
 * `data.write(...)` they are generic property loads in optimized code
 * (`--print-opt-code`: a LoadICTrampoline call before each, ~3 per event
 * in writeParts by callgrind); a constant function with `.call` is a direct call.
 */
const bufferWrite: (this: Buffer, text: string, offset: number) => number = utf8WriteOf(
  Buffer.prototype,
);

/**
 * `Buffer#write(text, offset)` as its utf8 path runs it: Node's binding
 * `utf8Write` (on Buffer.prototype since Node 0.x; Buffer#write itself ends
 * in it) called directly, when there. Inside Buffer#write, the loads of
 * `this.utf8Write` and `this.length` share their feedback with every
 * Buffer#write of the process (ioredis, sockets): megamorphic, a LoadIC call
 * each (~68 instructions, 2 per herald event: `Builtins_LoadIC` from
 * writeParts, callgrind). Here their feedback is this module's alone.
 */
function utf8WriteOf(prototype: Buffer): (this: Buffer, text: string, offset: number) => number {
  const utf8Write = (
    prototype as unknown as {
      utf8Write?: (this: Buffer, text: string, offset: number, length: number) => number;
    }
  ).utf8Write;
  if (typeof utf8Write !== 'function') return prototype.write;
  return function write(this: Buffer, text: string, offset: number): number {
    return utf8Write.call(this, text, offset, this.length - offset);
  };
}
const bytesSet = Uint8Array.prototype.set;

/** `value` as the content of a JSON string: `JSON.stringify` without the quotes. */
function jsonContent(value: string): string {
  return JSON.stringify(value).slice(1, -1);
}

/** A value given in parts, joined (the pipeline's path). */
function joined(value: string | readonly string[]): string {
  return typeof value === 'string' ? value : value.join('');
}

/** Characters of a value, whole or in parts. */
function valueLength(value: string | readonly string[]): number {
  if (typeof value === 'string') return value.length;
  let length = 0;
  for (const part of value) length += part.length;
  return length;
}

/** The fields as the entry holds them: the affix, if any, around its value; parts joined. */
function entryFields(encoded: StreamEntryFields, affix: ValueAffix | undefined): string[] {
  const fields = encoded.map(joined);
  if (!affix) return fields;
  const value = fields[affix.index];
  fields[affix.index] = affix.prefix + (affix.json ? jsonContent(value) : value) + affix.suffix;
  return fields;
}

/**
 * Writes `value` at `offset` as the content of a JSON string. Written as it
 * is, then its bytes checked (cheaper than checking the string: a regular
 * expression, or reading a rope character by character); rewritten escaped
 * when one needs it, or is not ASCII (a lone surrogate must be escaped).
 * @returns its size in bytes
 */
function writeJsonContent(data: Buffer, offset: number, value: string): number {
  const size = bufferWrite.call(data, value, offset);
  for (let i = offset, end = offset + size; i < end; i++) {
    const byte = data[i];
    if (byte < 0x20 || byte === 0x22 || byte === 0x5c || byte >= 0x80)
      return bufferWrite.call(data, jsonContent(value), offset);
  }
  return size;
}

/**
 * Same stream, same field names in the same order, and the same affix
 * object as the run's first event (`names`: its fields); false for an event
 * its encoder refused.
 */
function sameShape(
  stream: string,
  fields: StreamEntryFields | NotEncoded,
  affix: ValueAffix | undefined,
  first: Pending,
  names: StreamEntryFields,
  firstAffix: ValueAffix | undefined,
): boolean {
  if (
    fields instanceof NotEncoded ||
    stream !== first.stream ||
    affix !== firstAffix ||
    fields.length !== names.length
  )
    return false;
  for (let j = 0; j < fields.length; j += 2) if (fields[j] !== names[j]) return false;
  return true;
}

/**
 * The values of one script call stay under this many characters (at most
 * three bytes each), and this many values: a command of bounded size, and
 * far fewer arguments than servers take (Redis 7: 2^31; older versions
 * 1,048,576).
 */
const SCRIPT_CHUNK_CHARS = 16 * 1024 * 1024;
const SCRIPT_CHUNK_VALUES = 65_536;

/** A larger batch's values get a buffer of their own, not kept. */
const SCRATCH_MAX_BYTES = 4 * 1024 * 1024;

/**
 * With two writes in flight, a batch ends where one caller's events end
 * once it holds this many (see {@link StreamPublisher.take}): fewer, and
 * the callers' events go together. A write costs the publisher about 50 µs
 * of its own, some hundred 200-byte events' share of it, and Redis about 6
 * µs, three events' (a private Redis, `INFO commandstats`, publishAll of 1
 * to 1000 events a call).
 */
const CALLER_CUT_MIN = 256;

/** {@link StreamPublisher.writeParts} keeps the bytes of repeated parts at this many first places of a value... */
const REPEATED_PLACES = 8;
/** ...of parts up to this many characters. */
const REPEATED_MAX_CHARS = 1024;

/**
 * A place whose part changed this many times in a row (an event's id) is
 * no longer compared with the part before, but once in {@link REPEATED_PROBE}
 * values: comparing two equal-length strings that are not the same string
 * goes through V8's runtime when one is not flat-sequential (the ids are
 * sliced strings: String::SlowEquals + SlowGetFlatContent, ~146 instructions
 * a compare by callgrind, twice per event before).
 */
const REPEATED_MISSES = 4;
/** See {@link REPEATED_MISSES}; a power of two. */
const REPEATED_PROBE = 64;

/** {@link StreamPublisher.writeParts}: the last part written at a place of a value in parts. */
class RepeatedPart {
  text = '';
  /** Its bytes, once it came twice in a row. */
  bytes: Buffer | undefined = undefined;
  /** How many times in a row the part here was not the one before. */
  misses = 0;
}

/**
 * What a write needs while it is in flight: the buffer its command is
 * written in and its events' entries as written. The publisher has two,
 * used in turn by writes in flight together; a slot is written again only
 * once the write that used it settled (its bytes were on the server then;
 * a call sent again on NOSCRIPT is a copy made before that).
 */
class WriteSlot {
  /** Up to {@link SCRATCH_MAX_BYTES}, kept from write to write. */
  scratch = Buffer.alloc(0);
  /**
   * By place in the batch: each event's fields as written (or its encoder's
   * refusal) and its affix ({@link StreamPublisher.addEntry}); cleared once
   * written ({@link StreamPublisher.clearEntries}).
   */
  readonly fields: (StreamEntryFields | NotEncoded)[] = [];
  readonly affixes: (ValueAffix | undefined)[] = [];
}

/** One write in flight: its events, its slot, its order-guard tokens; once answered, its events to retry. */
class Flight {
  /** Settles once answered (never rejects): {@link retry} is then set. Set at launch, by the write itself. */
  settled!: Promise<void>;
  answered = false;
  /** Its events to write again, in order. */
  retry: Pending[] = [];
  /** Every event to retry was refused by the order guard alone: no back-off. */
  orderOnly = true;

  constructor(
    readonly batch: Pending[],
    readonly slot: WriteSlot,
    /** Its token for the order guard ({@link XADD_BATCH}); '' without the guard. */
    readonly token: string,
    /** The token of the write in flight before it, or ''. */
    readonly after: string,
  ) {}
}

/** An ACL refusal of a command's keys (`NOPERM ... keys used as arguments`), not of the command. */
function isKeyRefusal(error: unknown): boolean {
  return /^NOPERM\b.*\bkeys?\b/.test(describe(error));
}

/** An XADD the script reports as refused (Redis's own error text). */
class ScriptReplyError extends Error {
  override name = 'ReplyError';
}

const describe = describeError;

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
  private readonly encode: (item: T) => StreamEntryFields;
  private readonly affix?: (item: T) => ValueAffix | undefined;
  private checkedAffix?: ValueAffix;
  /** Encode each event when it is written, not when published (see the option). */
  private readonly encodeOnWrite: boolean;
  private readonly maxLen: number;
  private readonly bufferSize: number;
  private readonly initialIntervalMs: number;
  private readonly maxBackoffMs: number;
  private readonly shutdownDrainTimeoutMs: number;
  private readonly batchSize: number;
  private readonly writeTimeoutMs: number;
  private writeMode: 'script' | 'pipeline';
  /** Cluster mode: a batch holds one stream (one slot); other streams must carry a hash tag. */
  private readonly cluster: boolean;
  private readonly waitReplicas: number;
  private readonly waitTimeoutMs: number;
  private buffer = new Fifo<Pending>();
  /** Writes in flight, oldest first (two at most: see {@link writesInFlight}). */
  private readonly flights: Flight[] = [];
  private readonly slots = [new WriteSlot(), new WriteSlot()];
  /** Writes sent so far: a write's order-guard token. */
  private launched = 0;
  /**
   * The order guard's key (see {@link XADD_BATCH}), one per publisher,
   * gone a minute after its last write: named after the stream (an ACL that
   * lets a client write keys starting with the stream's name lets it write
   * this one) and in the stream's cluster slot (a node of a cluster, or a
   * proxy routing by key, takes the script as it takes the stream).
   * Undefined for a stream whose braces make no hash tag: then one write at a time.
   */
  private readonly guardKey: string | undefined;
  /** The app's user may not write {@link guardKey} (NOPERM): one write at a time. */
  private guardRefused = false;
  /** {@link writeParts}: by place in a value in parts, the last part written there, and its bytes once it repeated. */
  private readonly repeated: RepeatedPart[] = Array.from(
    { length: REPEATED_PLACES },
    () => new RepeatedPart(),
  );
  /** Failed writes waiting for their retry: always written before the buffer. */
  private retry: Pending[] = [];
  private readonly sleeper = new Sleeper();
  private idle?: () => void;
  /** running -> draining (close() began) -> closed. */
  private readonly machine: StateMachine<PublisherState>;
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
    /** Writes sent while another was in flight. */
    overlappedWrites: 0,
    /** Writes the order guard refused (the write before them was not written): retried after it. */
    orderRefused: 0,
    /** Events refused because the server is a Redis Cluster node (MOVED / ASK / CROSSSLOT). */
    clusterRefused: 0,
    /** Written, but fewer than `waitReplicas` replicas confirmed in time (the post rejected). */
    unconfirmed: 0,
    unsent: 0,
    bufferHighWater: 0,
  };

  constructor(input: StreamPublisherOptions<T>) {
    const options = resolveStreamPublisherOptions(input);
    this.stream = options.stream;
    this.logger = input.logger ?? consoleLogger;
    this.limiter = new WarningLimiter(this.logger);
    this.encode = options.encode;
    this.affix = options.affix;
    this.encodeOnWrite = options.encodeOnWrite;
    this.maxLen = options.maxLen;
    this.bufferSize = options.bufferSize;
    this.initialIntervalMs = options.drainInitialIntervalMs;
    this.maxBackoffMs = options.drainMaxBackoffMs;
    this.shutdownDrainTimeoutMs = options.shutdownDrainTimeoutMs;
    this.batchSize = options.drainBatchSize;
    this.writeMode = options.writeMode;
    this.writeTimeoutMs = options.writeTimeoutMs;
    this.machine = new StateMachine(
      'redis publisher ' + this.stream,
      'running',
      PUBLISHER_TRANSITIONS,
      this.logger,
    );
    this.ownsConnection = !options.connection;
    // No ioredis commandTimeout: it would arm a timer per XADD; one timer per batch does (see write()).
    this.connection =
      options.connection ??
      new RedisConnection(input, 'publisher', { connectionName: 'herald-publisher' });
    this.cluster = this.connection.isCluster;
    this.guardKey = keyInSlotOf(this.stream, `:herald-writer:${randomUUID()}`);
    this.waitReplicas = options.waitReplicas;
    this.waitTimeoutMs = options.waitTimeoutMs;
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
    this.checkStream(stream);
    const fields = this.accept(item);
    this.enqueue(
      new Pending(
        stream,
        fields,
        fields === undefined ? undefined : this.affixOf(item, fields),
        fields === undefined ? item : undefined,
        undefined,
        0,
      ),
    );
  }

  /**
   * Like {@link publish}, and resolves to the entry id once written. Rejects
   * with {@link EventDroppedError} if the event was pushed out of a full
   * buffer, {@link EventNotWrittenError} if `close()` gave up on it, or the
   * Redis error of a write that cannot succeed (e.g. WRONGTYPE).
   */
  publishAndWait(item: T, stream: string = this.stream): Promise<string> {
    let fields: StreamEntryFields | undefined;
    let affix: ValueAffix | undefined;
    try {
      this.checkStream(stream);
      fields = this.accept(item);
      affix = fields === undefined ? undefined : this.affixOf(item, fields);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) =>
      this.queue(stream, item, fields, affix, new SingleWaiter(resolve, reject), 0),
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
    if (!this.machine.is('running'))
      return Promise.reject(new TransportClosedError('publisher is closed'));
    try {
      this.checkStream(stream);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise(resolve => {
      const waiter = new BatchWaiter(items.length, resolve);
      for (let index = 0; index < items.length; index++) {
        const item = items[index];
        let fields: StreamEntryFields | undefined;
        let affix: ValueAffix | undefined;
        try {
          fields = this.accept(item);
          affix = fields === undefined ? undefined : this.affixOf(item, fields);
        } catch (error) {
          waiter.settle(index, asError(error));
          continue;
        }
        this.queue(stream, item, fields, affix, waiter, index);
      }
    });
  }

  /** Queues an accepted item: its fields, or with `encodeOnWrite` the item itself, encoded when written. */
  private queue(
    stream: string,
    item: T,
    fields: StreamEntryFields | undefined,
    affix: ValueAffix | undefined,
    waiter: Waiter,
    index: number,
  ): void {
    this.enqueue(
      new Pending(stream, fields, affix, fields === undefined ? item : undefined, waiter, index),
    );
  }

  /** Cluster mode: a stream named at publish needs a hash tag too. @throws InvalidOptionsError */
  private checkStream(stream: string): void {
    if (this.cluster && stream !== this.stream)
      checkClusterStream('StreamPublisher', stream, { cluster: [] });
  }

  /** The item's fields, checked; undefined with `encodeOnWrite` (encoded when written). */
  private accept(item: T): StreamEntryFields | undefined {
    // The state read, not is('running'): its rest parameter is an array per
    // call, and this runs once per event.
    if (this.machine.state !== 'running') throw new TransportClosedError('publisher is closed');
    return this.encodeOnWrite ? undefined : this.encoded(item);
  }

  /** `encode`'s fields for the item, checked. @throws TypeError for a list that is no entry; what `encode` throws */
  private encoded(item: T): StreamEntryFields {
    const fields = this.encode(item);
    if (fields.length === 0 || fields.length % 2 !== 0) {
      throw new TypeError('encode must return a non-empty [field, value, ...] list');
    }
    for (let j = 0; j < fields.length; j += 2)
      if (typeof fields[j] !== 'string')
        throw new TypeError('encode must name each field with a string');
    return fields;
  }

  /** The item's affix, checked against its fields. @throws TypeError for an affix that names no value */
  private affixOf(item: T, fields: StreamEntryFields): ValueAffix | undefined {
    const affix = this.affix?.(item);
    if (affix === undefined) return undefined;
    if (affix.index >= fields.length) throw new TypeError('affix.index is past the fields');
    if (typeof fields[affix.index] !== 'string')
      throw new TypeError('affix must name a value given whole (a string), not in parts');
    // One affix object serves a run of events: checked once.
    if (affix === this.checkedAffix) return affix;
    if (
      !Number.isInteger(affix.index) ||
      affix.index % 2 !== 1 ||
      typeof affix.prefix !== 'string' ||
      typeof affix.suffix !== 'string' ||
      (affix.json !== undefined && typeof affix.json !== 'boolean')
    )
      throw new TypeError(
        'affix must name a value (an odd index) and give a prefix and suffix (json: a boolean)',
      );
    this.checkedAffix = affix;
    return affix;
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
          logLine(
            'redis',
            'stream-buffer-full',
            `publish buffer full (${this.bufferSize}), dropped the oldest event, its post rejected with EventDroppedError (${dropped} dropped so far)`,
            { stream: oldest.stream, dropped },
          ),
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

  /**
   * Two writes in flight, one at a time otherwise: Redis runs one while the
   * publisher writes the next (and the posts answered by the first post
   * again meanwhile), where one at a time left each side waiting on the
   * other (issue 24). Only for the script, whose order guard keeps a write
   * from landing ahead of one before it that Redis refused; not in a
   * cluster (a batch there may go to another stream, in another slot than
   * the guard's key), nor with `waitReplicas` or a pipeline.
   */
  private writesInFlight(): number {
    return this.writeMode === 'script' &&
      !this.cluster &&
      this.waitReplicas === 0 &&
      this.guardKey !== undefined &&
      !this.guardRefused
      ? 2
      : 1;
  }

  /**
   * The next batch: retries first, then the buffer, up to `drainBatchSize`.
   * `byCaller`: a batch ends where one caller's events (one
   * {@link publishAll}, e.g. the bus's batch of posts) end, once it holds
   * {@link CALLER_CUT_MIN}: that caller's promise then settles on this
   * write's answer, and its next events go out while the next write runs.
   */
  private take(byCaller: boolean): Pending[] {
    let batch: Pending[];
    if (this.retry.length > 0) {
      batch = this.retry.splice(0, this.batchSize);
    } else {
      batch = [];
    }
    if (this.cluster) {
      // One stream per batch: a script's keys and a pipeline's commands must share one slot.
      const stream = batch[0]?.stream ?? this.buffer.at(0)?.stream;
      const cut = batch.findIndex(item => item.stream !== stream);
      if (cut >= 0) {
        this.retry = batch.splice(cut).concat(this.retry);
        return batch;
      }
      while (
        batch.length < this.batchSize &&
        this.buffer.length > 0 &&
        this.buffer.at(0)!.stream === stream
      )
        batch.push(this.buffer.shift()!);
      return batch;
    }
    while (batch.length < this.batchSize && this.buffer.length > 0) {
      if (byCaller && batch.length >= CALLER_CUT_MIN) {
        const last = batch[batch.length - 1].waiter;
        if (last instanceof BatchWaiter && this.buffer.at(0)!.waiter !== last) break;
      }
      batch.push(this.buffer.shift()!);
    }
    return batch;
  }

  private async drain(): Promise<void> {
    let backoff = 0;
    const flights = this.flights;
    for (;;) {
      if (flights.length === 0) {
        if (this.retry.length === 0 && this.buffer.length === 0) {
          if (!this.machine.is('running')) return;
          await new Promise<void>(resolve => (this.idle = resolve));
          continue;
        }
        if (!this.machine.is('running') && Date.now() >= this.deadline) return;
        if (!this.connection.ready) {
          // Not connected (yet, or any more): no point sending; wait for `ready` (which ends the back-off) instead.
          this.retry = this.notConnected(this.take(false)).concat(this.retry);
          backoff = await this.backOff(backoff);
          continue;
        }
      }
      const most = this.writesInFlight();
      while (
        flights.length < most &&
        (this.retry.length > 0 || this.buffer.length > 0) &&
        this.connection.ready &&
        (this.machine.is('running') || Date.now() < this.deadline)
      )
        this.launch(most > 1);
      if (flights.length === 0) continue;
      const first = flights[0];
      if (flights.length < most && this.machine.is('running')) {
        // The first write's answer, or a post to send beside it.
        await Promise.race([first.settled, new Promise<void>(resolve => (this.idle = resolve))]);
        this.idle = undefined;
        if (!first.answered) continue;
      } else {
        await first.settled;
      }
      flights.shift();
      if (first.retry.length === 0) {
        backoff = 0;
        continue;
      }
      // A write failed: the writes sent after it were refused by the order
      // guard (or failed too). All go again, in order, before anything else.
      let retry = first.retry;
      let orderOnly = first.orderOnly;
      while (flights.length > 0) {
        const next = flights.shift()!;
        await next.settled;
        retry = retry.concat(next.retry);
        orderOnly &&= next.orderOnly;
      }
      this.retry = retry.concat(this.retry);
      // Refused only for order: the write before is settled now, so at once.
      if (!orderOnly) backoff = await this.backOff(backoff);
    }
  }

  /** Sends the next batch, beside the write in flight if any (see {@link writesInFlight}). */
  private launch(byCaller: boolean): void {
    const flights = this.flights;
    const before = flights.at(-1);
    // The slot the write in flight does not use.
    const slot = before?.slot === this.slots[0] ? this.slots[1] : this.slots[0];
    const guarded = byCaller && !this.cluster;
    const flight = new Flight(
      this.take(byCaller),
      slot,
      guarded ? String(++this.launched) : '',
      guarded && before !== undefined ? before.token : '',
    );
    if (before !== undefined) this.counters.overlappedWrites++;
    flight.settled = this.write(flight);
    flights.push(flight);
  }

  /** Waits before writing failed events again. @returns the back-off to start from next time */
  private async backOff(backoff: number): Promise<number> {
    let wait: number;
    if (this.loading) {
      // Redis is up and loading its data: ask again soon, the load may end any moment.
      wait = LOADING_RETRY_MS;
    } else {
      backoff = backoff === 0 ? this.initialIntervalMs : Math.min(backoff * 2, this.maxBackoffMs);
      wait = backoff;
    }
    const pause = !this.machine.is('running') ? Math.min(wait, this.deadline - Date.now()) : wait;
    if (pause > 0) await this.sleeper.sleep(pause);
    return backoff;
  }

  /**
   * Sends one batch in one round trip and waits for the answers. A batch
   * unanswered within `writeTimeoutMs` means a dead socket: reconnecting
   * rejects its commands, which are then retried.
   */
  private async send(flight: Flight): Promise<WriteResult[]> {
    const batch = flight.batch;
    const timer = setTimeout(() => {
      this.logger.warn(
        logLine(
          'redis',
          'stream-write-timeout',
          `no answer to ${batch.length} XADD(s) within ${this.writeTimeoutMs} ms, reconnecting (the events are retried)`,
          { stream: this.stream },
        ),
      );
      this.connection.client.disconnect(true);
    }, this.writeTimeoutMs);
    try {
      if (this.writeMode === 'script' && this.waitReplicas === 0) {
        try {
          const results = await this.sendScript(flight);
          this.counters.scriptWrites++;
          return results;
        } catch (error) {
          if (flight.token !== '' && isKeyRefusal(error) && !this.guardRefused) {
            // Maybe the guard's key alone (an ACL naming the stream's keys
            // one by one): nothing was written; this batch goes again, and
            // everything after it, one write at a time without the guard.
            // Refused again then, the stream's key is refused (below).
            this.guardRefused = true;
            this.logger.warn(
              logLine(
                'redis',
                'write-guard-refused',
                `the script's keys were refused (${describe(error)}): maybe the order guard key ${this.guardKey} alone; sending the batch again without the guard, one batch at a time from now on`,
                { stream: this.stream },
              ),
            );
          }
          if (this.guardRefused && flight.token !== '') {
            const again = new ScriptReplyError(
              'HERALDORDER sent again without the order guard, whose key the app may not write',
            );
            return batch.map(() => again);
          }
          // Scripts refused for good (ACLs, a proxy without EVAL): write with a pipeline from now on.
          // Never for a cluster reply: a pipeline's XADDs would be redirected just the same.
          if (
            !isReplyError(error) ||
            isTransientReplyError(error) ||
            clusterReplyOf(error) !== undefined ||
            isNoScript(error) ||
            isOrderRefusal(error)
          )
            throw error;
          this.writeMode = 'pipeline';
          this.logger.warn(
            logLine(
              'redis',
              'write-script-refused',
              `cannot run the XADD script (${describe(error)}), using a pipeline`,
              { stream: this.stream },
            ),
          );
        }
      }
      return await this.sendPipeline(flight);
    } catch (error) {
      const cluster = clusterReplyOf(error);
      const failure =
        cluster && cluster !== 'CLUSTERDOWN'
          ? new RedisClusterError(cluster, describe(error))
          : asError(error);
      return batch.map(() => failure);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Adds an event's fields and affix as written now to `entries`: those kept
   * since it was published, or (`encodeOnWrite`) its item's, encoded now and
   * kept only while written; its encoder's refusal in their place.
   */
  private addEntry(slot: WriteSlot, pending: Pending, at: number): StreamEntryFields | NotEncoded {
    let fields = pending.fields;
    let affix = pending.affix;
    if (fields === undefined) {
      const item = pending.item as T;
      try {
        fields = this.encoded(item);
        affix = this.affixOf(item, fields);
      } catch (error) {
        const refused = new NotEncoded(asError(error));
        slot.fields[at] = refused;
        slot.affixes[at] = undefined;
        return refused;
      }
    }
    slot.fields[at] = fields;
    slot.affixes[at] = affix;
    return fields;
  }

  /**
   * Forgets the entries of places `[start, end)`, now in the command: only
   * refusals stay (for their results). With `encodeOnWrite` nothing of these
   * events' entries then lives while Redis answers.
   */
  private clearEntries(slot: WriteSlot, start: number, end: number): void {
    const fields = slot.fields;
    for (let at = start; at < end; at++) {
      if (!(fields[at] instanceof NotEncoded)) fields[at] = WRITTEN;
      slot.affixes[at] = undefined;
    }
  }

  /** One pipeline of `XADD MAXLEN ~` commands, one per event. */
  private async sendPipeline(flight: Flight): Promise<WriteResult[]> {
    const { batch, slot } = flight;
    const pipeline = this.connection.client.pipeline();
    // Per event: its refusal, or the place of its reply.
    const places: (number | NotEncoded)[] = [];
    let commands = 0;
    for (let i = 0; i < batch.length; i++) {
      const item = batch[i];
      const encoded = this.addEntry(slot, item, i);
      if (encoded instanceof NotEncoded) {
        places.push(encoded);
        continue;
      }
      const fields = entryFields(encoded, slot.affixes[i]);
      if (this.maxLen > 0) pipeline.xadd(item.stream, 'MAXLEN', '~', this.maxLen, '*', ...fields);
      else pipeline.xadd(item.stream, '*', ...fields);
      places.push(commands++);
    }
    this.clearEntries(slot, 0, batch.length);
    if (commands === 0) return places as NotEncoded[];
    // WAIT in the same pipeline: it goes to the node that took these XADDs, cluster or not.
    if (this.waitReplicas > 0) pipeline.call('WAIT', this.waitReplicas, this.waitTimeoutMs);
    const replies = (await pipeline.exec()) as [Error | null, unknown][] | null;
    const confirmed = this.waitReplicas > 0 ? replies?.[commands] : undefined;
    return places.map(place => {
      if (place instanceof NotEncoded) return place;
      const [error, id] = replies?.[place] ?? [new Error('no reply'), null];
      if (error) return error;
      if (confirmed === undefined) return String(id);
      const [waitError, replicas] = confirmed;
      if (!waitError && Number(replicas) >= this.waitReplicas) return String(id);
      this.counters.unconfirmed++;
      return new ReplicasNotConfirmedError(
        String(id),
        waitError ? 0 : Number(replicas),
        this.waitReplicas,
      );
    });
  }

  /**
   * EVALSHA running `XADD MAXLEN ~` per event on the server: the same
   * commands in the same order as the pipeline, for a fraction of the client
   * CPU (one command to encode and one reply to parse instead of one each
   * per event; the command's bytes written here, see {@link scriptCall}). A
   * batch whose values pass {@link SCRIPT_CHUNK_CHARS} characters or
   * {@link SCRIPT_CHUNK_VALUES} values goes as several calls, one after the
   * other: a call that fails leaves the events after it
   * unwritten (retried in order), never written ahead of it.
   */
  private async sendScript(flight: Flight): Promise<WriteResult[]> {
    const { batch, slot } = flight;
    const results: WriteResult[] = [];
    let start = 0;
    let chars = 0;
    let values = 0;
    for (let i = 0; i < batch.length; i++) {
      const fields = this.addEntry(slot, batch[i], i);
      if (!(fields instanceof NotEncoded)) {
        for (let j = 1; j < fields.length; j += 2) chars += valueLength(fields[j]);
        // Escaped for JSON, a character takes up to six (`\u001f`): counted twice.
        const affix = slot.affixes[i];
        if (affix?.json) chars += valueLength(fields[affix.index]);
        values += fields.length / 2;
      }
      if (chars < SCRIPT_CHUNK_CHARS && values < SCRIPT_CHUNK_VALUES && i < batch.length - 1)
        continue;
      // The values go into the command now: the entries are not kept across
      // the round trip (with encodeOnWrite, nothing of the events' entries
      // lives while Redis answers), only the refusals, for their results.
      // The first call names the write in flight before it; a later one of
      // this batch names this batch's own token: it runs only if the call
      // before it wrote every one of its events (see XADD_BATCH).
      const after = start === 0 ? flight.after : flight.token;
      const call =
        values > 0 ? this.scriptCall(flight, after, start, i + 1, chars, values) : undefined;
      this.clearEntries(slot, start, i + 1);
      let reply: unknown;
      try {
        reply =
          call === undefined ? '' : await evalPrepared(this.connection.client, XADD_BATCH, call);
      } catch (error) {
        // The first call's error is the batch's (send() decides: retry, or fall back to a pipeline).
        if (start === 0) throw error;
        const failure = asError(error);
        while (results.length < batch.length) results.push(failure);
        return results;
      }
      // One string, ids (or `!error`) one per line: one reply to parse instead of one per event.
      const list = typeof reply === 'string' && reply !== '' ? reply.split('\n') : [];
      let next = 0;
      for (let at = start; at <= i; at++) {
        const mark = slot.fields[at];
        if (mark instanceof NotEncoded) {
          results.push(mark);
          continue;
        }
        const line = list[next++];
        results.push(
          typeof line !== 'string'
            ? new Error('no reply')
            : line.startsWith('!')
              ? new ScriptReplyError(line.slice(1))
              : line,
        );
      }
      start = i + 1;
      chars = 0;
      values = 0;
    }
    return results;
  }

  /**
   * The {@link XADD_BATCH} call for the events `batch[start..end)`, its
   * bytes written here (see redis.prepared-command.ts): the runs, then every
   * value, one argument each, written in place (each write returns its size
   * in bytes). Never as one joined string: a string past about 128 KB lands
   * in V8's large-object space, whose allocation costs far more than the
   * copy (the whole command used to be one such string, flattened at the
   * socket write).
   */
  private scriptCall(
    flight: Flight,
    /** The token the order guard must hold for this call to run, or ''. */
    after: string,
    start: number,
    end: number,
    /** The values' characters, those escaped for JSON counted twice. */
    chars: number,
    values: number,
  ): PreparedScriptCall {
    const { batch, slot, token } = flight;
    const entries = slot.fields;
    const affixes = slot.affixes;
    const keys: string[] = [];
    const runs: string[] = [];
    let runChars = 0;
    for (let at = start; at < end;) {
      // A run: events with the first one's stream, field names and affix, which go once.
      const first = batch[at];
      const names = entries[at];
      if (names instanceof NotEncoded) {
        // Refused by its encoder: not written (its result says so).
        at++;
        continue;
      }
      let key = keys.indexOf(first.stream);
      if (key < 0) key = keys.push(first.stream) - 1;
      const affix = affixes[at];
      const k = names.length / 2;
      let next = at + 1;
      while (
        next < end &&
        sameShape(batch[next].stream, entries[next], affixes[next], first, names, affix)
      )
        next++;
      runs.push(String(key + 1), String(k), String(next - at));
      // Names are strings (accept() checked).
      for (let j = 0; j < names.length; j += 2) runs.push(names[j] as string);
      // The affixed field's number (1 = the first field), or 0.
      if (affix) runs.push(String((affix.index + 1) / 2), affix.prefix, affix.suffix);
      else runs.push('0');
      at = next;
    }
    for (const run of runs) runChars += run.length;
    // The order guard's key goes last (the runs name the streams by place).
    if (token !== '') keys.push(this.guardKey!);
    // A UTF-16 unit is at most 3 bytes of UTF-8, and each argument has its framing. The
    // slot's scratch is reused once this write settled (see WriteSlot).
    const bound =
      ScriptCallWriter.headBound(this.connection.client, keys) +
      3 * (chars + runChars + token.length + after.length) +
      16 * (values + runs.length + 4);
    let data = slot.scratch;
    if (data.length < bound) {
      data = Buffer.allocUnsafeSlow(bound);
      if (bound <= SCRATCH_MAX_BYTES) slot.scratch = data;
    }
    const writer = new ScriptCallWriter(data);
    const first = writer.begin(this.connection.client, XADD_BATCH, keys, 4 + runs.length + values);
    let offset = writeBulk(data, first, String(this.maxLen));
    offset = writeBulk(data, offset, String(runs.length));
    offset = writeBulk(data, offset, token);
    offset = writeBulk(data, offset, after);
    for (const run of runs) offset = writeBulk(data, offset, run);
    for (let at = start; at < end; at++) {
      const fields = entries[at];
      if (fields instanceof NotEncoded) continue;
      const affix = affixes[at];
      const json = affix?.json ? affix.index : -1;
      for (let j = 1; j < fields.length; j += 2) {
        const value = fields[j];
        const length = valueLength(value);
        const from = openBulk(data, offset, length);
        let size: number;
        if (typeof value !== 'string') {
          // In parts: one after the other, one value for Redis.
          size = this.writeParts(data, from, value);
        } else {
          size =
            j === json ? writeJsonContent(data, from, value) : bufferWrite.call(data, value, from);
        }
        offset = closeBulk(data, offset, length, from, size);
      }
    }
    return writer.finish(offset);
  }

  /**
   * Writes a value's parts one after the other at `offset`; a part the same
   * as the one at its place in the value before (the transport's `["` and
   * the header's members after the id, one string per run of posts) is
   * copied from its bytes kept, not encoded again: each `Buffer#write` pays
   * a call into C++ (about 800 instructions, callgrind), which for short
   * parts is most of their cost. @returns the value's size in bytes
   */
  private writeParts(data: Buffer, offset: number, parts: readonly string[]): number {
    let at = offset;
    const repeated = this.repeated;
    for (let k = 0; k < parts.length; k++) {
      const part = parts[k];
      if (k >= repeated.length || part.length > REPEATED_MAX_CHARS) {
        at += bufferWrite.call(data, part, at);
        continue;
      }
      const seen = repeated[k];
      const misses = seen.misses;
      if (misses >= REPEATED_MISSES && (misses & (REPEATED_PROBE - 1)) !== 0) {
        // A place that keeps changing (an id): written, not compared (see REPEATED_MISSES).
        // Kept within [REPEATED_PROBE, 2 * REPEATED_PROBE): a small integer however long it runs.
        seen.misses = misses + 1 < 2 * REPEATED_PROBE ? misses + 1 : REPEATED_PROBE;
        // Nor kept: the probe compares with the part of the last probe, which
        // finds a change just the same (its bytes stay undefined meanwhile, so
        // nothing stale is copied), and a young string stored into this
        // long-lived record costs a write barrier per place per event
        // (RecordWrite, ~50 instructions each, callgrind) and holds the
        // string through the next scavenge.
        at += bufferWrite.call(data, part, at);
        continue;
      }
      const same = part === seen.text;
      const bytes = seen.bytes;
      if (same && bytes !== undefined) {
        // A few bytes by hand: TypedArray#set costs about 150 instructions a call (callgrind).
        if (bytes.length <= 8) for (let i = 0; i < bytes.length; i++) data[at + i] = bytes[i];
        else bytesSet.call(data, bytes, at);
        at += bytes.length;
        continue;
      }
      const size: number = bufferWrite.call(data, part, at);
      // Its bytes kept once it came twice in a row: a part that changes every time (an id) costs no copy.
      if (same) {
        seen.bytes = Buffer.from(data.subarray(at, at + size));
        seen.misses = 0;
      } else {
        seen.text = part;
        seen.bytes = undefined;
        seen.misses = misses + 1;
      }
      at += size;
    }
    return at - offset;
  }

  private notConnected(batch: Pending[]): Pending[] {
    this.counters.writeErrors++;
    // Before the first connection this is the normal start-up; afterwards the connection's own error was logged.
    this.logger.debug?.(
      `stream ${this.stream}: not connected, ${batch.length} event(s) wait for the connection`,
    );
    return batch;
  }

  /**
   * Writes a batch in one round trip; sets the flight's events to retry, in
   * order, and marks it answered. Never rejects.
   */
  private async write(flight: Flight): Promise<void> {
    const batch = flight.batch;
    const results = await this.send(flight);
    const retry: Pending[] = [];
    let firstError: unknown;
    let orderRefused = false;
    for (let i = 0; i < batch.length; i++) {
      const item = batch[i];
      const result = results[i];
      if (typeof result === 'string') {
        this.counters.written++;
        item.waiter?.settle(item.index, result);
        continue;
      }
      if (result instanceof NotEncoded) {
        // Its encoder refused it (encodeOnWrite): it would be refused again.
        this.counters.failed++;
        this.limiter.error(
          'encode-refused',
          logLine(
            'redis',
            'encode-refused',
            `event not written, its encoder refused it (its publish rejects): ${describe(result.error)}`,
            { stream: item.stream },
          ),
        );
        item.waiter?.settle(item.index, result.error);
        continue;
      }
      if (result instanceof ReplicasNotConfirmedError) {
        // Written: retrying would write it twice. The post learns it is not confirmed.
        this.counters.written++;
        item.waiter?.settle(item.index, result);
        continue;
      }
      let error = result;
      if (isOrderRefusal(error)) {
        // Nothing of it was written: it goes again once the write before it did.
        orderRefused = true;
        retry.push(item);
        continue;
      }
      const cluster = clusterReplyOf(error);
      if (cluster && !(error instanceof RedisClusterError))
        error = new RedisClusterError(cluster, describe(error));
      if (error instanceof RedisClusterError && cluster !== 'CLUSTERDOWN') {
        // Until cluster mode exists, a redirection is a write that cannot succeed here: named, counted, refused.
        this.counters.failed++;
        this.counters.clusterRefused++;
        this.limiter.error(
          `cluster:${cluster}`,
          logLine('redis', 'cluster-refused', `event not written: ${error.message}`, {
            stream: item.stream,
            reply: cluster,
          }),
        );
        item.waiter?.settle(item.index, error);
        continue;
      }
      if (isReplyError(error) && !isTransientReplyError(error)) {
        // A write Redis refuses for good (WRONGTYPE, bad arguments): retrying would block the stream forever.
        this.counters.failed++;
        this.limiter.error(
          'xadd-refused',
          logLine(
            'redis',
            'xadd-refused',
            `XADD refused, event discarded (its post rejects): ${describe(error)}`,
            { stream: item.stream },
          ),
        );
        item.waiter?.settle(item.index, error);
        continue;
      }
      firstError ??= error;
      retry.push(item);
    }
    flight.retry = retry;
    flight.orderOnly = firstError === undefined;
    flight.answered = true;
    if (orderRefused) {
      this.counters.orderRefused++;
      this.logger.debug?.(
        `stream ${this.stream}: a write refused by the order guard (the write before it was not written), sent again after it`,
      );
    }
    // A write refused for order alone says nothing of the server: the one before it did.
    if (firstError !== undefined || !orderRefused)
      this.loading = firstError !== undefined && isLoadingReplyError(firstError);
    if (firstError === undefined) return;
    this.counters.writeErrors++;
    if (this.machine.is('running') || Date.now() < this.deadline) {
      this.limiter.warn(
        'write-retry',
        logLine(
          'redis',
          'stream-write-retry',
          `${retry.length} event(s) not written, retrying with back-off: ${describe(firstError)}`,
          { stream: this.stream },
        ),
      );
    }
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
    this.machine.setState('draining');
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
      this.logger.warn(
        logLine(
          'redis',
          'publisher-closed-unwritten',
          `closed with ${left.length} event(s) not written (shutdownDrainTimeoutMs ran out; their posts rejected with EventNotWrittenError)`,
          { stream: this.stream, unsent: left.length },
        ),
      );
    }
    this.limiter.flush();
    this.machine.setState('closed');
    this.machine.complete();
    return { unsent: left.length, written: this.counters.written, dropped: this.counters.dropped };
  }

  /** Events of the writes in flight, and those an answered one has yet to hand back for retry. */
  private inFlight(): number {
    let events = 0;
    for (const flight of this.flights)
      events += flight.answered ? flight.retry.length : flight.batch.length;
    return events;
  }

  /** Counters (`published`, `written`, `dropped`, `failed`, `writeErrors`, `unsent`) and the `buffered` gauge. */
  stats(): Readonly<Record<string, number>> {
    return {
      ...this.counters,
      buffered: this.buffer.length + this.retry.length + this.inFlight(),
      connected: this.connection.ready ? 1 : 0,
    };
  }
}

import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Observable } from 'rxjs';
import { InvalidOptionsError, TransportClosedError } from '../../common/errors.js';
import { Fifo } from '../../common/fifo.js';
import { consoleLogger, type HeraldLogger } from '../../common/logger.js';
import type { TransportStatus } from '../../interfaces/transport.interface.js';
import {
  DEAD_LETTER_SUFFIX,
  DEFAULT_BLOCK_MS,
  DEFAULT_CHECK_CONSUMERS_INTERVAL_MS,
  DEFAULT_CLAIM_INTERVAL_MS,
  DEFAULT_CONSUMER_TIMEOUT_MS,
  DEFAULT_CURSOR_PREFIX,
  DEFAULT_FAN_OUT_START,
  DEFAULT_GROUP_START_ID,
  DEFAULT_HANDLER_ATTEMPTS,
  DEFAULT_HANDLER_RETRY_DELAY_MS,
  DEFAULT_MAX_DELIVERIES,
  DEFAULT_MAX_LEN,
  DEFAULT_MIN_IDLE_MS,
  DEFAULT_NACK_RETRY_DELAY_MS,
  DEFAULT_READ_BACKOFF_INITIAL_MS,
  DEFAULT_READ_BACKOFF_MAX_MS,
  DEFAULT_READ_COUNT,
} from './redis.constants.js';
import {
  isReplyError,
  isTransientReplyError,
  RedisConnection,
  type RedisConnectionOptions,
} from './redis.connection.js';
import {
  EmptyStreamError,
  EmptySubscriberNameError,
  StreamEntryError,
  UnknownOperationError,
} from './redis.errors.js';
import { Sleeper } from './sleeper.js';
import { fieldsToRecord } from './stream-event.js';

/**
 * Consumer-group mode (beyond the original, after Watermill): each entry goes
 * to one consumer of the group, is acknowledged only after its handler
 * succeeded, and is delivered again otherwise. @publicApi
 */
export interface ConsumerGroupOptions {
  /** The group. @default the subscriber's `name` */
  name?: string;
  /** This consumer's name, unique per process. @default `<host>-<pid>-<random>` */
  consumer?: string;
  /** Where a new group starts: `$` (only new entries) or `0` (the whole stream). @default '$' */
  startId?: string;
  /**
   * A pending entry idle longer than this is claimed by another consumer
   * (XAUTOCLAIM). Entries this consumer is still handling are kept from
   * going idle by `XCLAIM ... JUSTID` heartbeats every `minIdleMs / 3`.
   * @default 60000
   */
  minIdleMs?: number;
  /** How often stale pending entries are looked for. @default 5000 */
  claimIntervalMs?: number;
  /** An entry delivered more times than this (Redis's count, from XPENDING) goes to the dead-letter stream. @default 5 */
  maxDeliveries?: number;
  /** Where dead letters go. @default `<stream>:dead` */
  deadLetterStream?: string;
  /** Pause before a failed entry is delivered again in this process. @default 1000 */
  nackRetryDelayMs?: number;
  /**
   * When your handlers have a timeout, give it: `minIdleMs` must exceed it,
   * checked at start. @default none
   */
  handlerTimeoutMs?: number;
  /** Other consumers idle this long and holding nothing pending are deleted. @default 600000 */
  consumerTimeoutMs?: number;
  /** How often idle consumers are looked for; 0 never. @default 300000 */
  checkConsumersIntervalMs?: number;
  /** Delete the whole group at `close()` (a per-instance group nobody else reads). @default false */
  destroyOnClose?: boolean;
}

/** Options of {@link StreamSubscriber}; fan-out defaults are the original's. @publicApi */
export interface StreamSubscriberOptions extends RedisConnectionOptions {
  /** The stream read. Required, non-empty. */
  stream: string;
  /** The subscriber's name: part of the cursor key, and the default group name. Required, non-empty. */
  name: string;
  /** Fan-out mode: the cursor key is `<cursorPrefix>:cursor:<name>:<stream>`. @default 'mainflux' */
  cursorPrefix?: string;
  /** Fan-out mode: where the first boot starts (`$` skips history, `0` reads it). @default '$' */
  start?: string;
  /** Entries per read. @default 100 */
  count?: number;
  /** How long one read blocks waiting for entries. @default 1000 */
  blockMs?: number;
  /** Fan-out mode: calls of a failing handler in all before the entry is skipped. @default 2 */
  handlerAttempts?: number;
  /** Fan-out mode: pause between those calls. @default 500 */
  handlerRetryDelayMs?: number;
  /** First pause after a read error; doubles up to `readBackoffMaxMs`. @default 1000 */
  readBackoffInitialMs?: number;
  /** @default 30000 */
  readBackoffMaxMs?: number;
  /** Handlers running at once; 1 keeps stream order. @default 1 */
  concurrency?: number;
  /** Group mode: entries read and not yet settled before reading pauses. @default 2 × count */
  maxInFlight?: number;
  /** Approximate length of the dead-letter stream. @default 100000 */
  deadLetterMaxLen?: number;
  /**
   * Group mode: `script` reads batches with XREADGROUP inside a script that
   * returns one framed string (far less client CPU), blocking with a plain
   * XREADGROUP only once the stream is drained; `command` always uses plain
   * XREADGROUP. `script` falls back to `command` where scripts are refused.
   * @default 'script'
   */
  readMode?: 'script' | 'command';
  /** Consumer-group mode; a string names the group. @default fan-out mode (XREAD, cursor key) */
  group?: ConsumerGroupOptions | string;
}

/** One entry handed to a handler. @publicApi */
export interface StreamMessage {
  readonly stream: string;
  readonly id: string;
  readonly fields: Readonly<Record<string, string>>;
  /** The entry's fields as read: `[field, value, ...]`. */
  readonly raw: readonly string[];
  /** 1 on first delivery; Redis's delivery count (XPENDING) on redeliveries. */
  readonly deliveries: number;
  readonly group?: string;
  readonly consumer?: string;
}

/**
 * Handles one entry. Settles the entry when it returns (or its promise
 * resolves); a throw or rejection is a failure: retried then skipped in
 * fan-out mode, not acknowledged (so delivered again) in group mode. Throw
 * {@link UnknownOperationError} to skip an entry without retrying.
 * @publicApi
 */
export type StreamHandler = (message: StreamMessage) => unknown;

/**
 * The callback form of a handler, for callers that settle later without a
 * promise (the transport settles when its bus does): call `done()` once on
 * success, `done(error)` on failure. A throw counts as `done(error)`.
 * @publicApi
 */
export type StreamSettlingHandler = (
  message: StreamMessage,
  done: (error?: unknown) => void,
) => void;

/** An entry as read, with `fields` built on first use (the transport decodes `raw` directly). */
class EntryMessage implements StreamMessage {
  private record?: Readonly<Record<string, string>>;

  constructor(
    readonly stream: string,
    readonly id: string,
    readonly raw: readonly string[],
    readonly deliveries: number,
    readonly group?: string,
    readonly consumer?: string,
  ) {}

  get fields(): Readonly<Record<string, string>> {
    return (this.record ??= fieldsToRecord(this.raw));
  }
}

interface Task {
  readonly message: StreamMessage;
  readonly done: (error?: unknown) => void;
}

/** An entry as XREAD returns it: id and flat fields (null for an entry deleted meanwhile). */
export type RawEntry = [id: string, fields: string[] | null];
type ReadReply = [stream: string, entries: RawEntry[]][] | null;

interface Held {
  readonly entry: RawEntry;
  retryTimer?: NodeJS.Timeout;
}

interface GroupSettings {
  readonly name: string;
  readonly consumer: string;
  readonly startId: string;
  readonly minIdleMs: number;
  readonly claimIntervalMs: number;
  readonly maxDeliveries: number;
  readonly deadLetterStream: string;
  readonly nackRetryDelayMs: number;
  readonly consumerTimeoutMs: number;
  readonly checkConsumersIntervalMs: number;
  readonly destroyOnClose: boolean;
}

/**
 * XREADGROUP ... > (no BLOCK), the entries framed in one string: per entry
 * `<id>\n<field count>\n`, then per field `<byte length>\n<bytes>`.
 */
const READ_BATCH_SCRIPT = `
local r = redis.pcall('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', KEYS[1], '>')
if type(r) == 'table' and r.err then return r end
if not r then return '' end
local out = {}
local n = 0
for _, e in ipairs(r[1][2]) do
  local f = e[2]
  n = n + 1
  out[n] = e[1] .. '\\n' .. #f .. '\\n'
  for i = 1, #f do
    n = n + 1
    out[n] = #f[i] .. '\\n' .. f[i]
  end
end
return table.concat(out)`;
const READ_BATCH_SHA = createHash('sha1').update(READ_BATCH_SCRIPT).digest('hex');

function framedNumber(buffer: Buffer, start: number, end: number): number {
  let value = 0;
  for (let i = start; i < end; i++) value = value * 10 + buffer[i] - 48;
  return value;
}

/** Parses {@link READ_BATCH_SCRIPT}'s reply. */
export function parseFramedEntries(buffer: Buffer): RawEntry[] {
  const entries: RawEntry[] = [];
  const length = buffer.length;
  let at = 0;
  while (at < length) {
    let newline = buffer.indexOf(10, at);
    if (newline < 0) throw new Error('malformed read script reply');
    const id = buffer.toString('latin1', at, newline);
    at = newline + 1;
    newline = buffer.indexOf(10, at);
    const count = framedNumber(buffer, at, newline);
    at = newline + 1;
    const fields = new Array<string>(count);
    for (let i = 0; i < count; i++) {
      newline = buffer.indexOf(10, at);
      const size = framedNumber(buffer, at, newline);
      at = newline + 1;
      fields[i] = buffer.toString('utf8', at, at + size);
      at += size;
    }
    entries.push([id, fields]);
  }
  if (at !== length) throw new Error('malformed read script reply');
  return entries;
}

/** Deletes a consumer only if it holds nothing pending: XGROUP DELCONSUMER would discard its entries. */
const DELETE_IDLE_CONSUMER = `
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #pending == 0 then return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2]) end
return -1`;

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A failure is never `undefined` (that means success to `done`). */
function failure(error: unknown): unknown {
  return error === undefined ? new Error('handler failed with undefined') : error;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  );
}

function positive(name: string, value: number, allowZero = false): number {
  if (
    typeof value !== 'number' ||
    Number.isNaN(value) ||
    value < 0 ||
    (!allowZero && value === 0)
  ) {
    throw new InvalidOptionsError(
      `${name} must be a ${allowZero ? 'non-negative' : 'positive'} number`,
    );
  }
  return value;
}

/** A consumer name no other process uses: host, pid and random bytes. @publicApi */
export function uniqueConsumerName(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/**
 * Reads a Redis stream and runs a handler per entry, in one of two modes:
 *
 * - **fan-out** (Magistrala's subscriber): `XREAD` from a position kept in
 *   the cursor key `<prefix>:cursor:<name>:<stream>`; the first boot starts
 *   at `$` (history skipped); the cursor is saved after each batch; a failing
 *   handler is retried then skipped; unknown operations are skipped and
 *   counted. At-least-once per batch: a crash replays the unsaved batch.
 * - **consumer group**: `XREADGROUP >`, `XACK` only after the handler
 *   succeeded, failed entries delivered again, stale entries of dead
 *   consumers claimed with `XAUTOCLAIM`, entries delivered more than
 *   `maxDeliveries` times moved to a dead-letter stream.
 *
 * Reads run on a dedicated connection that `close()` interrupts.
 * @publicApi
 */
export class StreamSubscriber {
  readonly stream: string;
  readonly name: string;
  readonly cursorKey: string;
  /** The blocking reads' connection. */
  readonly reader: RedisConnection;
  /** Acks, cursor, claims, dead letters. */
  readonly commands: RedisConnection;
  readonly group?: GroupSettings;
  private readonly logger: HeraldLogger;
  private readonly start: string;
  private readonly count: number;
  private readonly blockMs: number;
  private readonly handlerAttempts: number;
  private readonly handlerRetryDelayMs: number;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;
  private readonly concurrency: number;
  private readonly maxInFlight: number;
  private readonly deadLetterMaxLen: number;
  private readMode: 'script' | 'command';
  /** The last script read found nothing: the next read blocks. */
  private drained = false;
  private handler?: StreamSettlingHandler;
  private running = false;
  private stopped = false;
  private loop?: Promise<void>;
  private readonly sleeper = new Sleeper();
  private readonly disposeReady: () => void;
  /** Group mode: entries read (or claimed) and not yet settled, by id. */
  private readonly held = new Map<string, Held>();
  private capacityWaiter?: () => void;
  private readonly tasks = new Fifo<Task>();
  private runningTasks = 0;
  private pumping = false;
  private idleWaiters: (() => void)[] = [];
  private acks: string[] = [];
  private ackScheduled = false;
  private ackInFlight?: Promise<void>;
  private claimCursor = '0-0';
  private claiming = false;
  private timers: NodeJS.Timeout[] = [];
  private closing?: Promise<void>;
  private readonly counters = {
    read: 0,
    handled: 0,
    failed: 0,
    retried: 0,
    skipped: 0,
    unknown: 0,
    acked: 0,
    nacked: 0,
    claimRounds: 0,
    claimed: 0,
    redelivered: 0,
    deadLettered: 0,
    lost: 0,
    readErrors: 0,
    scriptReads: 0,
    groupsRecreated: 0,
    consumersDeleted: 0,
  };

  constructor(options: StreamSubscriberOptions) {
    if (typeof options?.stream !== 'string' || options.stream === '') throw new EmptyStreamError();
    if (typeof options.name !== 'string' || options.name === '')
      throw new EmptySubscriberNameError();
    this.stream = options.stream;
    this.name = options.name;
    this.logger = options.logger ?? consoleLogger;
    this.cursorKey = `${options.cursorPrefix ?? DEFAULT_CURSOR_PREFIX}:cursor:${this.name}:${this.stream}`;
    this.start = options.start ?? DEFAULT_FAN_OUT_START;
    this.count = positive('count', options.count ?? DEFAULT_READ_COUNT);
    this.blockMs = positive('blockMs', options.blockMs ?? DEFAULT_BLOCK_MS);
    this.handlerAttempts = positive(
      'handlerAttempts',
      options.handlerAttempts ?? DEFAULT_HANDLER_ATTEMPTS,
    );
    this.handlerRetryDelayMs = positive(
      'handlerRetryDelayMs',
      options.handlerRetryDelayMs ?? DEFAULT_HANDLER_RETRY_DELAY_MS,
      true,
    );
    this.backoffInitialMs = positive(
      'readBackoffInitialMs',
      options.readBackoffInitialMs ?? DEFAULT_READ_BACKOFF_INITIAL_MS,
    );
    this.backoffMaxMs = positive(
      'readBackoffMaxMs',
      options.readBackoffMaxMs ?? DEFAULT_READ_BACKOFF_MAX_MS,
    );
    this.concurrency = positive('concurrency', options.concurrency ?? 1);
    this.maxInFlight = positive('maxInFlight', options.maxInFlight ?? this.count * 2);
    this.deadLetterMaxLen = positive(
      'deadLetterMaxLen',
      options.deadLetterMaxLen ?? DEFAULT_MAX_LEN,
      true,
    );
    if (options.group !== undefined) this.group = this.groupSettings(options.group);
    this.readMode = options.readMode ?? 'script';
    if (this.readMode !== 'script' && this.readMode !== 'command') {
      throw new InvalidOptionsError(`readMode must be 'script' or 'command'`);
    }
    this.reader = new RedisConnection(options, 'reader', {
      connectionName: `herald-reader-${this.name}`,
    });
    this.commands = new RedisConnection(options, 'commands', {
      connectionName: `herald-commands-${this.name}`,
    });
    // A reader that comes back ends the read back-off at once.
    this.disposeReady = this.reader.onReady(() => this.sleeper.interrupt());
  }

  private groupSettings(input: ConsumerGroupOptions | string): GroupSettings {
    const group: ConsumerGroupOptions = typeof input === 'string' ? { name: input } : input;
    const name = group.name ?? this.name;
    if (typeof name !== 'string' || name === '')
      throw new InvalidOptionsError('group name cannot be empty');
    const minIdleMs = positive('group.minIdleMs', group.minIdleMs ?? DEFAULT_MIN_IDLE_MS);
    if (
      group.handlerTimeoutMs !== undefined &&
      !(minIdleMs > positive('group.handlerTimeoutMs', group.handlerTimeoutMs))
    ) {
      throw new InvalidOptionsError(
        `group.minIdleMs (${minIdleMs}) must exceed group.handlerTimeoutMs (${group.handlerTimeoutMs}), or live work would be claimed by another consumer`,
      );
    }
    const consumer = group.consumer ?? uniqueConsumerName();
    if (consumer === '') throw new InvalidOptionsError('group.consumer cannot be empty');
    return {
      name,
      consumer,
      startId: group.startId ?? DEFAULT_GROUP_START_ID,
      minIdleMs,
      claimIntervalMs: positive(
        'group.claimIntervalMs',
        group.claimIntervalMs ?? DEFAULT_CLAIM_INTERVAL_MS,
      ),
      maxDeliveries: positive('group.maxDeliveries', group.maxDeliveries ?? DEFAULT_MAX_DELIVERIES),
      deadLetterStream: group.deadLetterStream ?? `${this.stream}${DEAD_LETTER_SUFFIX}`,
      nackRetryDelayMs: positive(
        'group.nackRetryDelayMs',
        group.nackRetryDelayMs ?? DEFAULT_NACK_RETRY_DELAY_MS,
        true,
      ),
      consumerTimeoutMs: positive(
        'group.consumerTimeoutMs',
        group.consumerTimeoutMs ?? DEFAULT_CONSUMER_TIMEOUT_MS,
      ),
      checkConsumersIntervalMs: positive(
        'group.checkConsumersIntervalMs',
        group.checkConsumersIntervalMs ?? DEFAULT_CHECK_CONSUMERS_INTERVAL_MS,
        true,
      ),
      destroyOnClose: group.destroyOnClose ?? false,
    };
  }

  /** The reader connection's status. */
  get status$(): Observable<TransportStatus> {
    return this.reader.status$;
  }

  /**
   * Starts reading with `handler`. Resolves once connected and set up (the
   * group exists, or the cursor is loaded); reading then runs in the
   * background until `close()`. Rejects if called twice or after close.
   */
  subscribe(handler: StreamHandler): Promise<void> {
    if (typeof handler !== 'function')
      return Promise.reject(new TypeError('handler must be a function'));
    return this.subscribeSettled((message, done) => {
      const result = handler(message);
      if (isThenable(result))
        result.then(
          () => done(),
          (error: unknown) => done(failure(error)),
        );
      else done();
    });
  }

  /** Like {@link subscribe}, with a handler that settles each entry through `done`. */
  async subscribeSettled(handler: StreamSettlingHandler): Promise<void> {
    if (typeof handler !== 'function') throw new TypeError('handler must be a function');
    if (this.stopped) throw new TransportClosedError('subscriber is closed');
    if (this.handler) throw new InvalidOptionsError('subscriber already has a handler');
    this.handler = handler;
    this.running = true;
    await Promise.all([this.reader.connect(), this.commands.connect()]);
    if (this.stopped) return;
    if (this.group) {
      await this.ensureGroup();
      const group = this.group;
      this.every(group.claimIntervalMs, () => this.claimStale());
      this.every(Math.max(1, Math.floor(group.minIdleMs / 3)), () => this.heartbeat());
      if (group.checkConsumersIntervalMs > 0)
        this.every(group.checkConsumersIntervalMs, () => this.deleteIdleConsumers());
      void this.claimStale();
      this.loop = this.readGroup();
    } else {
      const saved = await this.commands.client.get(this.cursorKey);
      let from = saved || this.start;
      if (from === '$') {
        // `$` pinned now: what is added once subscribe() resolved is read, even before the first XREAD runs.
        const [newest] = (await this.commands.client.xrevrange(
          this.stream,
          '+',
          '-',
          'COUNT',
          1,
        )) as [string, string[]][];
        from = newest?.[0] ?? '0-0';
      }
      this.loop = this.readFanOut(from);
    }
  }

  private every(ms: number, task: () => Promise<void>): void {
    const timer = setInterval(() => void task(), ms);
    timer.unref();
    this.timers.push(timer);
  }

  // ---------------------------------------------------------------- fan-out

  private async readFanOut(from: string): Promise<void> {
    let cursor = from;
    let backoff = 0;
    while (this.running) {
      let reply: ReadReply;
      try {
        reply = (await this.reader.client.xread(
          'COUNT',
          this.count,
          'BLOCK',
          this.blockMs,
          'STREAMS',
          this.stream,
          cursor,
        )) as ReadReply;
        backoff = 0;
      } catch (error) {
        if (!this.running) break;
        backoff = await this.readFailed(error, backoff);
        continue;
      }
      const entries = reply?.[0]?.[1];
      if (!entries || entries.length === 0) continue;
      // `$` means "after the newest entry now": continue from what was read.
      this.counters.read += entries.length;
      await this.runFanOutBatch(entries);
      cursor = entries[entries.length - 1][0];
      try {
        await this.commands.client.set(this.cursorKey, cursor);
      } catch (error) {
        this.logger.warn(
          `stream ${this.stream}: cannot save cursor ${this.cursorKey}=${cursor}: ${describe(error)}`,
        );
      }
    }
  }

  private runFanOutBatch(entries: RawEntry[]): Promise<void> {
    return Promise.all(entries.map(entry => this.runWithRetries(entry))).then(() => undefined);
  }

  /** Runs one entry through the task queue; resolves to its failure, if any. */
  private attempt(message: StreamMessage): Promise<unknown> {
    return new Promise(resolve => this.enqueue({ message, done: resolve }));
  }

  private async runWithRetries(entry: RawEntry): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const error = await this.attempt(this.message(entry, attempt));
      if (error === undefined) {
        this.counters.handled++;
        return;
      }
      if (error instanceof UnknownOperationError || error instanceof StreamEntryError) {
        if (error instanceof UnknownOperationError) this.counters.unknown++;
        else this.counters.skipped++;
        this.logger.warn(`stream ${this.stream}: entry ${entry[0]} skipped: ${error.message}`);
        return;
      }
      this.counters.failed++;
      if (attempt >= this.handlerAttempts || !this.running) {
        this.counters.skipped++;
        this.logger.error(
          `stream ${this.stream}: handler failed on entry ${entry[0]} ${attempt} time(s), giving up: ${describe(error)}`,
        );
        return;
      }
      this.counters.retried++;
      this.logger.warn(
        `stream ${this.stream}: handler failed on entry ${entry[0]}, retrying: ${describe(error)}`,
      );
      await new Promise(resolve => setTimeout(resolve, this.handlerRetryDelayMs));
    }
  }

  // ------------------------------------------------------------ group mode

  private async ensureGroup(): Promise<void> {
    const group = this.group!;
    try {
      await this.commands.client.xgroup(
        'CREATE',
        this.stream,
        group.name,
        group.startId,
        'MKSTREAM',
      );
    } catch (error) {
      if (!describe(error).startsWith('BUSYGROUP')) throw error;
    }
  }

  private async readGroup(): Promise<void> {
    const group = this.group!;
    let backoff = 0;
    let prefetched: Promise<RawEntry[]> | undefined;
    while (this.running) {
      let entries: RawEntry[];
      let count = this.count;
      try {
        if (prefetched) {
          const next = prefetched;
          prefetched = undefined;
          entries = await next;
        } else {
          if (this.held.size >= this.maxInFlight) {
            await new Promise<void>(resolve => (this.capacityWaiter = resolve));
            continue;
          }
          count = Math.min(this.count, this.maxInFlight - this.held.size);
          entries = await this.readOnce(count);
        }
        backoff = 0;
      } catch (error) {
        if (!this.running) break;
        const message = describe(error);
        if (message.startsWith('NOGROUP')) {
          // The stream or the group is gone (deleted, or a Redis without persistence restarted): re-create it.
          this.counters.groupsRecreated++;
          this.logger.warn(
            `stream ${this.stream}: group ${group.name} is missing, re-creating it at ${group.startId}`,
          );
          try {
            await this.ensureGroup();
            continue;
          } catch (createError) {
            backoff = await this.readFailed(createError, backoff);
            continue;
          }
        }
        if (this.readMode === 'script' && isReplyError(error) && !isTransientReplyError(error)) {
          // Scripts refused for good (ACLs, a proxy without EVAL): plain XREADGROUP from now on.
          this.readMode = 'command';
          this.logger.warn(
            `stream ${this.stream}: cannot run the read script (${message}), using XREADGROUP`,
          );
          continue;
        }
        backoff = await this.readFailed(error, backoff);
        continue;
      }
      if (entries.length === 0) continue;
      this.counters.read += entries.length;
      // A full batch means more is waiting: ask for it now, so Redis works while these handlers run.
      const room = this.maxInFlight - this.held.size - entries.length;
      if (this.readMode === 'script' && entries.length >= count && room > 0 && this.running) {
        prefetched = this.readOnce(Math.min(this.count, room));
        prefetched.catch(() => undefined); // awaited next turn; a close() meanwhile must not leave it unhandled
      }
      for (const entry of entries) this.dispatch(entry, 1);
    }
  }

  /** One read: the script while entries keep coming, a blocking XREADGROUP once drained (a script cannot block). */
  private async readOnce(count: number): Promise<RawEntry[]> {
    if (this.readMode === 'script' && !this.drained) {
      const entries = await this.readByScript(count);
      this.counters.scriptReads++;
      this.drained = entries.length === 0;
      return entries;
    }
    const group = this.group!;
    const reply = (await this.reader.client.xreadgroup(
      'GROUP',
      group.name,
      group.consumer,
      'COUNT',
      count,
      'BLOCK',
      this.blockMs,
      'STREAMS',
      this.stream,
      '>',
    )) as ReadReply;
    this.drained = false;
    return reply?.[0]?.[1] ?? [];
  }

  /**
   * XREADGROUP without BLOCK inside a script that returns the whole batch as
   * one length-framed string: the client parses one reply instead of five
   * elements per entry (the bulk of a consumer's CPU at volume).
   */
  private async readByScript(count: number): Promise<RawEntry[]> {
    const group = this.group!;
    const args = [1, this.stream, group.name, group.consumer, count];
    let reply: Buffer;
    try {
      reply = (await this.reader.client.callBuffer('EVALSHA', [READ_BATCH_SHA, ...args])) as Buffer;
    } catch (error) {
      if (!describe(error).startsWith('NOSCRIPT')) throw error;
      reply = (await this.reader.client.callBuffer('EVAL', [READ_BATCH_SCRIPT, ...args])) as Buffer;
    }
    return parseFramedEntries(reply);
  }

  private async readFailed(error: unknown, backoff: number): Promise<number> {
    this.counters.readErrors++;
    const next = backoff === 0 ? this.backoffInitialMs : Math.min(backoff * 2, this.backoffMaxMs);
    this.logger.warn(
      `stream ${this.stream}: read failed, retrying in ${next} ms: ${describe(error)}`,
    );
    await this.sleeper.sleep(next);
    return next;
  }

  /** Group mode: hands an entry this consumer now owns to the handler; settles it after. */
  private dispatch(entry: RawEntry, deliveries: number): void {
    const id = entry[0];
    const held = this.held.get(id);
    if (held) clearTimeout(held.retryTimer);
    this.held.set(id, { entry });
    this.enqueue({
      message: this.message(entry, deliveries),
      done: error => this.settled(entry, deliveries, error),
    });
  }

  private settled(entry: RawEntry, deliveries: number, error: unknown): void {
    const id = entry[0];
    if (error === undefined) {
      this.counters.handled++;
      this.ack(id);
      return;
    }
    if (error instanceof UnknownOperationError) {
      this.counters.unknown++;
      this.logger.warn(`stream ${this.stream}: entry ${id} skipped: ${error.message}`);
      this.ack(id);
      return;
    }
    this.counters.failed++;
    if (error instanceof StreamEntryError) {
      // An entry no handler can read never will: dead-letter it now rather than retrying.
      void this.deadLetter(entry, deliveries, `undecodable: ${error.message}`).then(
        () => this.release(id),
        deadError => {
          this.logger.warn(
            `stream ${this.stream}: cannot dead-letter entry ${id}: ${describe(deadError)}`,
          );
          this.release(id);
        },
      );
      return;
    }
    void this.nack(entry, error);
  }

  private release(id: string): void {
    const held = this.held.get(id);
    if (held) clearTimeout(held.retryTimer);
    this.held.delete(id);
    const waiter = this.capacityWaiter;
    if (waiter && this.held.size < this.maxInFlight) {
      this.capacityWaiter = undefined;
      waiter();
    }
  }

  private ack(id: string): void {
    this.release(id);
    this.acks.push(id);
    if (this.ackScheduled) return;
    this.ackScheduled = true;
    setImmediate(() => void this.flushAcks());
  }

  /** One XACK for every id settled since the last flush. */
  private async flushAcks(): Promise<void> {
    this.ackScheduled = false;
    if (this.acks.length === 0) return;
    const ids = this.acks;
    this.acks = [];
    const sent = this.commands.client.xack(this.stream, this.group!.name, ...ids).then(
      () => void (this.counters.acked += ids.length),
      error => {
        // Unacknowledged entries stay pending: retried here while running, else claimed later and redelivered.
        this.logger.warn(
          `stream ${this.stream}: XACK of ${ids.length} entries failed: ${describe(error)}`,
        );
        if (!this.running) return;
        this.acks.push(...ids);
        if (!this.ackScheduled) {
          this.ackScheduled = true;
          setTimeout(() => void this.flushAcks(), 200).unref();
        }
      },
    );
    this.ackInFlight = sent;
    await sent;
  }

  /** A failed entry: delivered again here after a pause, or dead-lettered once over `maxDeliveries`. */
  private async nack(entry: RawEntry, reason: unknown): Promise<void> {
    const group = this.group!;
    const id = entry[0];
    this.counters.nacked++;
    try {
      const pending = (await this.commands.client.xpending(this.stream, group.name, id, id, 1)) as [
        string,
        string,
        number,
        number,
      ][];
      const mine = pending[0];
      if (!mine || mine[1] !== group.consumer) {
        // Acknowledged or claimed by someone else meanwhile: not ours any more.
        this.release(id);
        return;
      }
      const deliveries = Number(mine[3]);
      if (deliveries >= group.maxDeliveries) {
        await this.deadLetter(entry, deliveries, `handler failed: ${describe(reason)}`);
        this.release(id);
        return;
      }
      if (!this.running) {
        this.release(id);
        return;
      }
      const held = this.held.get(id);
      if (!held) return;
      held.retryTimer = setTimeout(
        () => void this.redeliver(id, deliveries),
        group.nackRetryDelayMs,
      );
    } catch (error) {
      this.logger.warn(
        `stream ${this.stream}: cannot settle failed entry ${id} (it stays pending and will be claimed again): ${describe(error)}`,
      );
      this.release(id);
    }
  }

  private async redeliver(id: string, deliveries: number): Promise<void> {
    const group = this.group!;
    if (!this.running) {
      this.release(id);
      return;
    }
    try {
      // XCLAIM to ourselves counts the delivery in Redis and returns the entry as it is now.
      const claimed = (await this.commands.client.xclaim(
        this.stream,
        group.name,
        group.consumer,
        0,
        id,
      )) as RawEntry[];
      const entry = claimed[0];
      if (!entry || !entry[1]) {
        this.lost([id]);
        this.release(id);
        return;
      }
      this.counters.redelivered++;
      this.dispatch(entry, deliveries + 1);
    } catch (error) {
      this.logger.warn(`stream ${this.stream}: cannot redeliver entry ${id}: ${describe(error)}`);
      this.release(id);
    }
  }

  /** Moves an entry to the dead-letter stream and acknowledges it, atomically (MULTI). */
  private async deadLetter(entry: RawEntry, deliveries: number, reason: string): Promise<void> {
    const group = this.group!;
    const [id, fields] = entry;
    const extra = [
      'dead_reason',
      reason,
      'dead_stream',
      this.stream,
      'dead_id',
      id,
      'dead_group',
      group.name,
      'dead_deliveries',
      String(deliveries),
    ];
    const trim = this.deadLetterMaxLen > 0 ? ['MAXLEN', '~', String(this.deadLetterMaxLen)] : [];
    const results = await this.commands.client
      .multi()
      .xadd(group.deadLetterStream, ...trim, '*', ...(fields ?? []), ...extra)
      .xack(this.stream, group.name, id)
      .exec();
    const failure = results?.find(([error]) => error)?.[0];
    if (!results || failure) throw failure ?? new Error('MULTI aborted');
    this.counters.deadLettered++;
    this.logger.warn(
      `stream ${this.stream}: entry ${id} moved to ${group.deadLetterStream} after ${deliveries} deliveries: ${reason}`,
    );
  }

  private lost(ids: string[]): void {
    if (ids.length === 0) return;
    this.counters.lost += ids.length;
    this.logger.error(
      `stream ${this.stream}: ${ids.length} pending entr${ids.length === 1 ? 'y was' : 'ies were'} trimmed before being acknowledged (lost): ${ids.slice(0, 10).join(', ')}`,
    );
  }

  /**
   * Claims entries other consumers left pending longer than `minIdleMs`
   * (XAUTOCLAIM), reads their delivery counts from XPENDING, dead-letters
   * those over `maxDeliveries` and runs the rest.
   */
  private async claimStale(): Promise<void> {
    const group = this.group;
    if (!group || !this.running || this.claiming || !this.commands.ready) return;
    const room = Math.min(this.count, this.maxInFlight - this.held.size);
    if (room <= 0) return;
    this.claiming = true;
    try {
      const reply = (await this.commands.client.xautoclaim(
        this.stream,
        group.name,
        group.consumer,
        group.minIdleMs,
        this.claimCursor,
        'COUNT',
        room,
      )) as [string, (RawEntry | null)[], string[]?];
      const [next, claimed, deleted] = reply;
      this.claimCursor = next;
      this.lost(deleted ?? []);
      const entries: RawEntry[] = [];
      const vanished: string[] = [];
      for (const entry of claimed) {
        if (entry && entry[1]) entries.push(entry);
        else if (entry) vanished.push(entry[0]); // Redis 6.2 returns deleted entries with no fields
      }
      if (vanished.length) {
        this.lost(vanished);
        await this.commands.client.xack(this.stream, group.name, ...vanished);
      }
      if (entries.length === 0 || !this.running) return;
      this.counters.claimed += entries.length;
      const pending = (await this.commands.client.xpending(
        this.stream,
        group.name,
        entries[0][0],
        entries[entries.length - 1][0],
        entries.length + this.held.size,
        group.consumer,
      )) as [string, string, number, number][];
      const counts = new Map(pending.map(([id, , , deliveries]) => [id, Number(deliveries)]));
      for (const entry of entries) {
        const id = entry[0];
        if (this.held.has(id)) continue; // still running here: never run twice in one process
        const deliveries = counts.get(id) ?? 1;
        if (deliveries > group.maxDeliveries) {
          await this.deadLetter(
            entry,
            deliveries,
            `delivered ${deliveries} times (maxDeliveries ${group.maxDeliveries})`,
          );
        } else {
          this.dispatch(entry, deliveries);
        }
      }
    } catch (error) {
      if (this.running)
        this.logger.warn(
          `stream ${this.stream}: claiming stale entries failed: ${describe(error)}`,
        );
    } finally {
      this.claiming = false;
      this.counters.claimRounds++;
    }
  }

  /** Resets the idle time of entries still being handled here, so no one claims live work. */
  private async heartbeat(): Promise<void> {
    const group = this.group;
    if (!group || this.held.size === 0 || !this.commands.ready) return;
    const ids = [...this.held.keys()];
    try {
      for (let i = 0; i < ids.length; i += 1000) {
        await this.commands.client.xclaim(
          this.stream,
          group.name,
          group.consumer,
          0,
          ...ids.slice(i, i + 1000),
          'JUSTID',
        );
      }
    } catch (error) {
      this.logger.warn(
        `stream ${this.stream}: heartbeat of ${ids.length} running entries failed: ${describe(error)}`,
      );
    }
  }

  /** Deletes consumers idle over `consumerTimeoutMs` that hold nothing pending (checked atomically). */
  private async deleteIdleConsumers(): Promise<void> {
    const group = this.group;
    if (!group || !this.running || !this.commands.ready) return;
    try {
      const consumers = (await this.commands.client.xinfo(
        'CONSUMERS',
        this.stream,
        group.name,
      )) as unknown[][];
      for (const row of consumers) {
        const info = fieldsToRecord(row.map(String));
        if (info.name === group.consumer) continue;
        if (Number(info.pending) === 0 && Number(info.idle) > group.consumerTimeoutMs) {
          if (await this.deleteConsumer(info.name)) this.counters.consumersDeleted++;
        }
      }
    } catch (error) {
      this.logger.warn(`stream ${this.stream}: checking idle consumers failed: ${describe(error)}`);
    }
  }

  private async deleteConsumer(consumer: string): Promise<boolean> {
    const result = await this.commands.client.eval(
      DELETE_IDLE_CONSUMER,
      1,
      this.stream,
      this.group!.name,
      consumer,
    );
    return Number(result) >= 0;
  }

  // ------------------------------------------------------------- dispatch

  private message(entry: RawEntry, deliveries: number): StreamMessage {
    return new EntryMessage(
      this.stream,
      entry[0],
      entry[1] ?? [],
      deliveries,
      this.group?.name,
      this.group?.consumer,
    );
  }

  /** Runs a task now if a handler slot is free, else queues it (in arrival order). */
  private enqueue(task: Task): void {
    if (this.runningTasks < this.concurrency && this.tasks.length === 0) this.invoke(task);
    else this.tasks.push(task);
  }

  private invoke(task: Task): void {
    this.runningTasks++;
    let settled = false;
    const finish = (error?: unknown): void => {
      if (settled) return;
      settled = true;
      this.runningTasks--;
      try {
        task.done(error);
      } finally {
        this.pump();
      }
    };
    try {
      this.handler!(task.message, finish);
    } catch (error) {
      finish(failure(error));
    }
  }

  private pump(): void {
    // Handlers that settle synchronously would otherwise recurse once per queued task.
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.runningTasks < this.concurrency && this.tasks.length > 0)
        this.invoke(this.tasks.shift()!);
    } finally {
      this.pumping = false;
    }
    if (this.runningTasks === 0 && this.tasks.length === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const waiter of waiters) waiter();
    }
  }

  // ------------------------------------------------------------- lifecycle

  /** Stops reading (interrupting a blocked read); handlers already running go on. */
  async stopIntake(): Promise<void> {
    if (!this.running && !this.loop) return;
    this.running = false;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    this.disposeReady();
    this.sleeper.interrupt();
    this.capacityWaiter?.();
    this.reader.close();
    await this.loop;
    this.loop = undefined;
  }

  /**
   * Stops reading, waits for running handlers (at most `timeoutMs`), sends
   * the last acks, deletes this consumer if it holds nothing pending (or the
   * group, with `destroyOnClose`), and closes the connections. Entries still
   * unsettled stay pending for another consumer. Idempotent.
   */
  close(options: { timeoutMs?: number } = {}): Promise<void> {
    this.closing ??= this.shutdown(options.timeoutMs ?? 5000);
    return this.closing;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    this.stopped = true;
    await this.stopIntake();
    if (this.runningTasks > 0 || this.tasks.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>(resolve => this.idleWaiters.push(resolve)),
        new Promise<void>(resolve => (timer = setTimeout(resolve, timeoutMs))),
      ]);
      clearTimeout(timer);
    }
    for (const held of this.held.values()) clearTimeout(held.retryTimer);
    if (this.group && this.commands.ready) {
      await this.flushAcks();
      await this.ackInFlight?.catch(() => undefined);
      try {
        if (this.group.destroyOnClose) {
          await this.commands.client.xgroup('DESTROY', this.stream, this.group.name);
        } else {
          await this.deleteConsumer(this.group.consumer);
        }
      } catch (error) {
        this.logger.warn(
          `stream ${this.stream}: cleanup of consumer ${this.group.consumer} failed: ${describe(error)}`,
        );
      }
    }
    this.commands.close();
  }

  /** Counters, with `inFlight` (group mode: read, not yet settled). */
  stats(): Readonly<Record<string, number>> {
    return { ...this.counters, inFlight: this.held.size, running: this.runningTasks };
  }
}

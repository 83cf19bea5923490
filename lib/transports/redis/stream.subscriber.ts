import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Observable } from 'rxjs';
import { describeError } from '../../common/describe-error.js';
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
  EmptySubscriberNameError,
  isUndecodable,
  RedisClusterError,
  UnknownOperationError,
} from './redis.errors.js';
import { WarningLimiter } from '../../common/warning-limiter.js';
import {
  DELETE_IDLE_CONSUMER,
  evalScript,
  evalScriptBuffer,
  GAP_CHECK,
  READ_BATCH,
} from './redis.scripts.js';
import { Sleeper } from './sleeper.js';
import { fieldsToRecord } from './stream-event.js';
import {
  EntryMessage,
  entryFromBuffers,
  parseFramedEntries,
  parseGap,
  type BufferEntry,
  type RawEntry,
  type StreamMessage,
  type TrimmedGap,
} from './stream.entry.js';

export { parseFramedEntries, type RawEntry, type StreamMessage } from './stream.entry.js';

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

interface Task {
  readonly message: StreamMessage;
  readonly done: (error?: unknown) => void;
}

type ReadReply = [stream: Buffer, entries: BufferEntry[]][] | null;

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

const describe = describeError;

/** The first id is later than the second (stream ids: `<ms>-<seq>`, no leading zeros). */
export function idAfter(a: string, b: string): boolean {
  const [ams, aseq = '0'] = a.split('-');
  const [bms, bseq = '0'] = b.split('-');
  if (ams.length !== bms.length) return ams.length > bms.length;
  if (ams !== bms) return ams > bms;
  if (aseq.length !== bseq.length) return aseq.length > bseq.length;
  return aseq > bseq;
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
  /** Group mode: the newest id this subscriber read; where a lost group is re-created. */
  private lastSeenId?: string;
  /** Command mode: the trimmed-unread check script can run (false where scripts are refused). */
  private gapCheck = true;
  /** Fan-out mode: true while a batch's handlers run (stopIntake does not wait for them). */
  private inBatch = false;
  private batchStarted?: () => void;
  private readonly limiter: WarningLimiter;
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
    /** The group was found missing (NOGROUP: a Redis restart without persistence, or a deleted stream). */
    resets: 0,
    /** Entries trimmed before the group read them (counted once per group), also in `lost`. */
    trimmedUnread: 0,
    /** Gaps of trimmed-unread entries Redis could not count (before Redis 7). */
    trimmedGaps: 0,
    /** Entries no handler could read (not UTF-8, a decoder failed): dead-lettered or skipped at once. */
    undecodable: 0,
    /** Of those, entries with a field that is not valid UTF-8. */
    nonUtf8: 0,
    consumersDeleted: 0,
  };

  constructor(options: StreamSubscriberOptions) {
    if (typeof options?.stream !== 'string' || options.stream === '') throw new EmptyStreamError();
    if (typeof options.name !== 'string' || options.name === '')
      throw new EmptySubscriberNameError();
    this.stream = options.stream;
    this.name = options.name;
    this.logger = options.logger ?? consoleLogger;
    this.limiter = new WarningLimiter(this.logger);
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
      await this.ensureGroup(this.group.startId);
      this.lastSeenId = await this.groupPosition();
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
        reply = (await this.reader.client.xreadBuffer(
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
      const entries = reply?.[0]?.[1].map(entryFromBuffers);
      if (!entries || entries.length === 0) continue;
      // `$` means "after the newest entry now": continue from what was read.
      this.counters.read += entries.length;
      this.inBatch = true;
      this.batchStarted?.();
      // While stopping, close() waits for these handlers at most its timeout; the cursor is saved if they finish.
      await this.runFanOutBatch(entries);
      this.inBatch = false;
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
    const bytes = entry[2];
    if (bytes) {
      this.counters.undecodable++;
      this.counters.nonUtf8++;
      this.counters.skipped++;
      this.limiter.warn(
        'non-utf8',
        `stream ${this.stream}: entry ${entry[0]} skipped (undecodable): field '${bytes.badField}' is not valid UTF-8`,
      );
      return;
    }
    for (let attempt = 1; ; attempt++) {
      const error = await this.attempt(this.message(entry, attempt));
      if (error === undefined) {
        this.counters.handled++;
        return;
      }
      if (error instanceof UnknownOperationError) {
        this.counters.unknown++;
        this.logger.warn(`stream ${this.stream}: entry ${entry[0]} skipped: ${error.message}`);
        return;
      }
      if (isUndecodable(error)) {
        this.counters.skipped++;
        this.counters.undecodable++;
        this.logger.warn(
          `stream ${this.stream}: entry ${entry[0]} skipped (undecodable): ${describe(error)}`,
        );
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

  /** Creates the group at `at` unless it exists. @returns true when this call created it. */
  private async ensureGroup(at: string): Promise<boolean> {
    const group = this.group!;
    try {
      await this.commands.client.xgroup('CREATE', this.stream, group.name, at, 'MKSTREAM');
      return true;
    } catch (error) {
      const cluster = clusterReplyOf(error);
      if (cluster) throw new RedisClusterError(cluster, describe(error));
      if (!describe(error).startsWith('BUSYGROUP')) throw error;
      return false;
    }
  }

  /** The group's last-delivered-id: where this subscriber's view of the stream begins. */
  private async groupPosition(): Promise<string | undefined> {
    const groups = (await this.commands.client.xinfo('GROUPS', this.stream)) as unknown[][];
    for (const row of groups) {
      const info = fieldsToRecord(row.map(String));
      if (info.name === this.group!.name) return info['last-delivered-id'];
    }
    return undefined;
  }

  /**
   * NOGROUP: the group (or the whole stream) is gone: a Redis without
   * persistence restarted, or someone deleted it. The group is re-created at
   * the last id this subscriber saw, so whatever was written since (stream
   * ids grow with time, a restarted Redis's included) is still delivered.
   * Entries the old group had delivered and not acknowledged are gone with it.
   */
  private async groupReset(): Promise<void> {
    const group = this.group!;
    const at = this.lastSeenId ?? group.startId;
    this.counters.groupsRecreated++;
    this.counters.resets++;
    this.drained = false;
    const created = await this.ensureGroup(at);
    this.logger.warn(
      `stream ${this.stream}: group ${group.name} is missing (Redis restarted without persistence, or the stream or group was deleted): ${
        created ? 're-created it' : 'another consumer re-created it'
      } at ${at}, the last id this subscriber saw (${
        this.lastSeenId === undefined
          ? 'none yet: the group start id'
          : 'entries after it are delivered'
      }); ${this.held.size} entr${this.held.size === 1 ? 'y' : 'ies'} in flight here cannot be acknowledged any more`,
    );
  }

  /** Counts and logs entries trimmed before the group read them (found by the gap check). */
  private trimmed(gap: TrimmedGap): void {
    const range = `after ${gap.after} and before ${gap.before}`;
    if (gap.lost === undefined) {
      this.counters.trimmedGaps++;
      this.logger.warn(
        `stream ${this.stream}: group ${this.group!.name}: entries ${range} were trimmed before the group read them (lost; this Redis cannot count them: Redis 7 can)`,
      );
      return;
    }
    this.counters.trimmedUnread += gap.lost;
    this.counters.lost += gap.lost;
    this.logger.warn(
      `stream ${this.stream}: group ${this.group!.name}: ${gap.lost} entr${gap.lost === 1 ? 'y' : 'ies'} ${range} trimmed before the group read them (lost; raise maxLen or read faster)`,
    );
  }

  /** Records the newest id read, for {@link groupReset}. */
  private saw(entries: readonly RawEntry[]): void {
    const last = entries[entries.length - 1]?.[0];
    if (last !== undefined && (this.lastSeenId === undefined || idAfter(last, this.lastSeenId)))
      this.lastSeenId = last;
  }

  private async readGroup(): Promise<void> {
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
          try {
            await this.groupReset();
            continue;
          } catch (createError) {
            backoff = await this.readFailed(createError, backoff);
            continue;
          }
        }
        const cluster = clusterReplyOf(error);
        if (cluster) {
          // Never taken for "scripts refused": the same command would be redirected too.
          backoff = await this.readFailed(new RedisClusterError(cluster, message), backoff);
          continue;
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
      this.saw(entries);
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
    if (this.gapCheck) await this.checkGap();
    const reply = (await this.reader.client.xreadgroupBuffer(
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
    return reply?.[0]?.[1].map(entryFromBuffers) ?? [];
  }

  /** Before a plain XREADGROUP: the trimmed-unread check on its own (the read script includes it). */
  private async checkGap(): Promise<void> {
    try {
      const reply = await evalScript(this.reader.client, GAP_CHECK, [
        1,
        this.stream,
        this.group!.name,
      ]);
      const gap = typeof reply === 'string' && reply !== '' ? parseGap(reply.trim()) : undefined;
      if (gap) this.trimmed(gap);
    } catch (error) {
      if (!isReplyError(error) || isTransientReplyError(error) || clusterReplyOf(error))
        throw error;
      if (describe(error).startsWith('NOGROUP')) throw error;
      this.gapCheck = false;
      this.logger.warn(
        `stream ${this.stream}: cannot run the trimmed-entries check (${describe(error)}): entries trimmed before group ${this.group!.name} read them will not be counted`,
      );
    }
  }

  /**
   * XREADGROUP without BLOCK inside a script that returns the whole batch as
   * one length-framed string: the client parses one reply instead of five
   * elements per entry (the bulk of a consumer's CPU at volume).
   */
  private async readByScript(count: number): Promise<RawEntry[]> {
    const group = this.group!;
    const reply = await evalScriptBuffer(this.reader.client, READ_BATCH, [
      1,
      this.stream,
      group.name,
      group.consumer,
      count,
    ]);
    const { entries, gap } = parseFramedEntries(reply);
    if (gap) this.trimmed(gap);
    return entries;
  }

  private async readFailed(error: unknown, backoff: number): Promise<number> {
    this.counters.readErrors++;
    if (isLoadingReplyError(error)) {
      // Redis is up and loading its data: ask again soon, without growing the back-off.
      await this.sleeper.sleep(LOADING_RETRY_MS);
      return backoff;
    }
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
    const bytes = entry[2];
    if (bytes) {
      // Text with U+FFFD would reach handlers as if it were what was written: dead-lettered, bytes kept.
      this.counters.nonUtf8++;
      this.undecodable(entry, deliveries, `field '${bytes.badField}' is not valid UTF-8`);
      return;
    }
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
    if (isUndecodable(error)) {
      this.undecodable(entry, deliveries, describe(error));
      return;
    }
    this.counters.failed++;
    void this.nack(entry, error);
  }

  /** An entry no handler can read never will: dead-lettered now, never retried as a handler failure. */
  private undecodable(entry: RawEntry, deliveries: number, reason: string): void {
    const id = entry[0];
    this.counters.undecodable++;
    void this.deadLetter(entry, deliveries, `undecodable: ${reason}`).then(
      () => this.release(id),
      deadError => {
        this.logger.warn(
          `stream ${this.stream}: cannot dead-letter undecodable entry ${id} (it stays pending and is claimed again): ${describe(deadError)}`,
        );
        this.release(id);
      },
    );
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
        if (describe(error).startsWith('NOGROUP')) {
          // The group is gone (reset): nothing is pending any more, these handlers did run.
          this.limiter.warn(
            'xack-nogroup',
            `stream ${this.stream}: XACK of ${ids.length} entr${ids.length === 1 ? 'y' : 'ies'} (${ids.slice(0, 3).join(', ')}) dropped: group ${this.group!.name} no longer exists (the handlers ran)`,
          );
          return;
        }
        // Unacknowledged entries stay pending: retried here once connected, else claimed later and redelivered.
        this.limiter.warn(
          'xack',
          `stream ${this.stream}: XACK of ${ids.length} entr${ids.length === 1 ? 'y' : 'ies'} (${ids.slice(0, 3).join(', ')}) failed, retrying once connected: ${describe(error)}`,
        );
        if (!this.running) return;
        this.acks.push(...ids);
        if (!this.ackScheduled) {
          this.ackScheduled = true;
          void this.commands.whenReady().then(() => {
            setTimeout(() => void this.flushAcks(), 50).unref();
          });
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
      const claimed = (await this.commands.client.callBuffer('XCLAIM', [
        this.stream,
        group.name,
        group.consumer,
        0,
        id,
      ])) as unknown as BufferEntry[];
      const entry = claimed[0] ? entryFromBuffers(claimed[0]) : undefined;
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
    const [id, text, bytes] = entry;
    // The original bytes where the text would not be them (not UTF-8).
    const fields: readonly (string | Buffer)[] = bytes?.fields ?? text ?? [];
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
      .xadd(group.deadLetterStream, ...trim, '*', ...fields, ...extra)
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
      const reply = (await this.commands.client.callBuffer('XAUTOCLAIM', [
        this.stream,
        group.name,
        group.consumer,
        group.minIdleMs,
        this.claimCursor,
        'COUNT',
        room,
      ])) as unknown as [Buffer, (BufferEntry | null)[], Buffer[]?];
      const [next, claimed, deleted] = reply;
      this.claimCursor = String(next);
      this.lost((deleted ?? []).map(String));
      const entries: RawEntry[] = [];
      const vanished: string[] = [];
      for (const item of claimed) {
        if (!item) continue;
        const entry = entryFromBuffers(item);
        if (entry[1]) entries.push(entry);
        else vanished.push(entry[0]); // Redis 6.2 returns deleted entries with no fields
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
    const result = await evalScript(this.commands.client, DELETE_IDLE_CONSUMER, [
      1,
      this.stream,
      this.group!.name,
      consumer,
    ]);
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
    const loop = this.loop;
    // Reading has stopped once the loop ends or (fan-out) sits in a batch's handlers, which may hang.
    if (loop)
      await new Promise<void>(resolve => {
        void loop.then(resolve);
        if (this.inBatch) resolve();
        else this.batchStarted = resolve;
      });
    this.batchStarted = undefined;
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
    const deadline = Date.now() + timeoutMs;
    this.stopped = true;
    await this.stopIntake();
    let timer: NodeJS.Timeout | undefined;
    const timeUp = new Promise<void>(
      resolve => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))),
    );
    if (this.runningTasks > 0 || this.tasks.length > 0) {
      await Promise.race([new Promise<void>(resolve => this.idleWaiters.push(resolve)), timeUp]);
    }
    // Fan-out: the loop saves the cursor of a batch whose handlers finished in time.
    if (this.loop) await Promise.race([this.loop, timeUp]);
    clearTimeout(timer);
    const stuck = this.runningTasks + this.tasks.length;
    if (stuck > 0) {
      this.logger.warn(
        `stream ${this.stream}: closed after ${timeoutMs} ms with ${stuck} handler call(s) still running or queued (${
          this.group
            ? 'their entries stay pending for another consumer'
            : 'their batch is read again at the next start'
        })`,
      );
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

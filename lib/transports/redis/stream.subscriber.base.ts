import { logLine } from '../../common/log-line.js';
import type { HeraldLogger } from '../../common/logger.js';
import { consoleLogger } from '../../common/logger.js';
import { describeError } from '../../common/describe-error.js';
import { StateMachine } from '../../common/state-machine.js';
import { WarningLimiter } from '../../common/warning-limiter.js';
import { isLoadingReplyError, LOADING_RETRY_MS, RedisConnection } from './redis.connection.js';
import { Sleeper } from './sleeper.js';
import { EntryMessage, type RawEntry, type StreamMessage } from './stream.entry.js';
import { HeldEntries, type Held } from './stream.held.js';
import {
  resolveStreamSubscriberOptions,
  type GroupSettings,
  type StreamSubscriberOptions,
} from './stream.subscriber.options.js';
import { TaskPool, type StreamSettlingHandler } from './stream.task-pool.js';

/**
 * The subscriber's lifecycle: `subscribe()` starts it, reading runs until
 * `stopIntake()` or `close()`; `closing` waits (bounded) for handlers.
 */
export type SubscriberState = 'idle' | 'starting' | 'reading' | 'stopped' | 'closing' | 'closed';

const SUBSCRIBER_TRANSITIONS: { readonly [S in SubscriberState]: readonly SubscriberState[] } = {
  idle: ['starting', 'closing'],
  starting: ['reading', 'stopped', 'closing'],
  reading: ['stopped', 'closing'],
  stopped: ['closing'],
  closing: ['closed'],
  closed: [],
};

export const describe = describeError;

/**
 * Group mode's lean way in, for the transport (which brings its own
 * dispatch and concurrency): each entry with its record and delivery count,
 * settled through `StreamSubscriber.settleEntry` exactly once; no message
 * object, task or closure per entry.
 */
export type EntryHandler = (entry: RawEntry, held: Held, deliveries: number) => void;

/**
 * What every role of the {@link StreamSubscriber} shares: its resolved
 * options, its two connections, its counters, the entries it holds, its
 * task pool and its lifecycle. The roles build on it, one file each, in this
 * order: settlement (ack / nack / redeliver / dead-letter), upkeep (claims,
 * heartbeats, idle consumers), the group reader, the fan-out reader, and the
 * public class (subscribe, shutdown, stats).
 */
export abstract class SubscriberBase {
  readonly stream: string;
  readonly name: string;
  readonly cursorKey: string;
  /** The blocking reads' connection. */
  readonly reader: RedisConnection;
  /** Acks, cursor, claims, dead letters. */
  readonly commands: RedisConnection;
  readonly group?: GroupSettings;
  protected readonly logger: HeraldLogger;
  protected readonly limiter: WarningLimiter;
  protected readonly start: string;
  protected readonly count: number;
  protected readonly blockMs: number;
  protected readonly handlerAttempts: number;
  protected readonly handlerRetryDelayMs: number;
  protected readonly backoffInitialMs: number;
  protected readonly backoffMaxMs: number;
  protected readonly maxInFlight: number;
  protected readonly deadLetterMaxLen: number;
  protected readMode: 'script' | 'command';
  /** The last script read found nothing: the next read blocks. */
  protected drained = false;
  protected handler?: StreamSettlingHandler;
  protected entryHandler?: EntryHandler;
  /** Entries handed to {@link entryHandler} and not settled yet. */
  protected entriesOut = 0;
  private entriesIdle: (() => void)[] = [];
  protected loop?: Promise<void>;
  protected readonly sleeper = new Sleeper();
  protected readonly disposeReady: () => void;
  /** Group mode: entries read (or claimed) and not yet settled. */
  protected readonly held = new HeldEntries();
  protected capacityWaiter?: () => void;
  protected readonly pool: TaskPool;
  protected acks: string[] = [];
  protected ackScheduled = false;
  protected ackInFlight?: Promise<void>;
  protected claimCursor = '0-0';
  /** One claim round at a time. */
  protected claiming = false;
  protected timers: NodeJS.Timeout[] = [];
  /** Group mode: the newest id this subscriber read; where a lost group is re-created. */
  protected lastSeenId?: string;
  /** Command mode: the trimmed-unread check script can run (false where scripts are refused). */
  protected gapCheck = true;
  /** Fan-out mode: true while a batch's handlers run (stopIntake does not wait for them). */
  protected inBatch = false;
  protected batchStarted?: () => void;
  protected readonly lifecycle: StateMachine<SubscriberState>;
  /** Group mode: the group's lag and pending count as last probed (undefined: not known). */
  protected readonly gauges: { lag?: number; pending?: number } = {};
  protected readonly counters = {
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

  constructor(input: StreamSubscriberOptions) {
    const options = resolveStreamSubscriberOptions(input);
    this.stream = options.stream;
    this.name = options.name;
    this.logger = input.logger ?? consoleLogger;
    this.limiter = new WarningLimiter(this.logger);
    this.cursorKey = options.cursorKey;
    this.start = options.start;
    this.count = options.count;
    this.blockMs = options.blockMs;
    this.handlerAttempts = options.handlerAttempts;
    this.handlerRetryDelayMs = options.handlerRetryDelayMs;
    this.backoffInitialMs = options.readBackoffInitialMs;
    this.backoffMaxMs = options.readBackoffMaxMs;
    this.maxInFlight = options.maxInFlight;
    this.deadLetterMaxLen = options.deadLetterMaxLen;
    this.readMode = options.readMode;
    this.group = options.group;
    this.pool = new TaskPool(options.concurrency, () => this.handler);
    this.lifecycle = new StateMachine(
      `redis subscriber ${this.name} on ${this.stream}`,
      'idle',
      SUBSCRIBER_TRANSITIONS,
      this.logger,
    );
    this.reader = new RedisConnection(input, 'reader', {
      connectionName: `herald-reader-${this.name}`,
    });
    this.commands = new RedisConnection(input, 'commands', {
      connectionName: `herald-commands-${this.name}`,
    });
    // A reader that comes back ends the read back-off at once.
    this.disposeReady = this.reader.onReady(() => this.sleeper.interrupt());
  }

  /** Reading (or about to): the loops and timers go on while this holds. */
  protected get running(): boolean {
    return this.lifecycle.is('starting', 'reading');
  }

  /** `close()` began. */
  protected get closed(): boolean {
    return this.lifecycle.is('closing', 'closed');
  }

  protected every(ms: number, task: () => Promise<void>): void {
    const timer = setInterval(() => void task(), ms);
    timer.unref();
    this.timers.push(timer);
  }

  protected async readFailed(error: unknown, backoff: number): Promise<number> {
    this.counters.readErrors++;
    if (isLoadingReplyError(error)) {
      // Redis is up and loading its data: ask again soon, without growing the back-off.
      await this.sleeper.sleep(LOADING_RETRY_MS);
      return backoff;
    }
    const next = backoff === 0 ? this.backoffInitialMs : Math.min(backoff * 2, this.backoffMaxMs);
    this.limiter.warn(
      'read-failed',
      logLine(
        'redis',
        'stream-read-failed',
        `read failed, retrying in ${next} ms: ${describe(error)}`,
        {
          stream: this.stream,
        },
      ),
    );
    await this.sleeper.sleep(next);
    return next;
  }

  /** Resolves once every entry handed to the entry handler was settled. */
  protected whenEntriesSettled(): Promise<void> {
    if (this.entriesOut === 0) return Promise.resolve();
    return new Promise(resolve => this.entriesIdle.push(resolve));
  }

  /** One entry handed to the entry handler was settled. */
  protected entrySettled(): void {
    if (--this.entriesOut > 0 || this.entriesIdle.length === 0) return;
    const waiters = this.entriesIdle;
    this.entriesIdle = [];
    for (const resolve of waiters) resolve();
  }

  /** Group mode: hands an entry this consumer now owns to the handler; settles it after. */

  protected message(entry: RawEntry, deliveries: number): StreamMessage {
    return new EntryMessage(
      this.stream,
      entry[0],
      entry[1] ?? [],
      deliveries,
      this.group?.name,
      this.group?.consumer,
    );
  }
}

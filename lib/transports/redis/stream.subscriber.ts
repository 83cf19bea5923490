import { logLine } from '../../common/log-line.js';
import { describeValue } from '../../common/options.validation.js';
import type { Observable } from 'rxjs';
import { InvalidOptionsError, TransportClosedError } from '../../common/errors.js';
import type { StateChange } from '../../common/state-machine.js';
import type { TransportStatus } from '../../interfaces/transport.interface.js';
import type { RawEntry, StreamMessage } from './stream.entry.js';
import type { Held, HoldEntry } from './stream.held.js';
import { FanOutReader } from './stream.fan-out.js';
import { describe, type EntryHandler, type SubscriberState } from './stream.subscriber.base.js';
import { failure, type StreamSettlingHandler } from './stream.task-pool.js';

export { parseFramedEntries, type RawEntry, type StreamMessage } from './stream.entry.js';
export { idAfter } from './stream.group-reader.js';
export type { EntryHandler, SubscriberState } from './stream.subscriber.base.js';
export type { Held, HoldEntry } from './stream.held.js';
export {
  resolveStreamSubscriberOptions,
  uniqueConsumerName,
  type ConsumerGroupOptions,
  type StreamSubscriberOptions,
} from './stream.subscriber.options.js';
export type { StreamSettlingHandler } from './stream.task-pool.js';

/**
 * Handles one entry. Settles the entry when it returns (or its promise
 * resolves); a throw or rejection is a failure: retried then skipped in
 * fan-out mode, not acknowledged (so delivered again) in group mode. Throw
 * {@link UnknownOperationError} to skip an entry without retrying.
 * @publicApi
 */
export type StreamHandler = (message: StreamMessage) => unknown;

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  );
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
export class StreamSubscriber extends FanOutReader {
  private closing?: Promise<void>;
  private intakeStopping?: Promise<void>;

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
      return Promise.reject(
        new TypeError(`handler must be a function (got ${describeValue(handler)})`),
      );
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
    if (typeof handler !== 'function')
      throw new TypeError(`handler must be a function (got ${describeValue(handler)})`);
    this.claimHandler();
    this.handler = handler;
    await this.begin();
  }

  /**
   * Group mode, for the transport: each entry goes to `handler` with its
   * record and delivery count, at once and in arrival order (no message
   * object, task or closure per entry: the caller brings its own dispatch
   * and concurrency), and is settled through {@link settleEntry} exactly
   * once. Otherwise as {@link subscribeSettled}.
   */
  async subscribeEntries(handler: EntryHandler): Promise<void>;
  /**
   * As {@link subscribeEntries}, each entry's record made by `hold`: the
   * caller's own per-entry object (e.g. the transport's delivery), handed to
   * `handler` and settled through {@link settleEntry} as the record.
   */
  async subscribeEntries<H extends Held>(
    handler: (entry: RawEntry, held: H, deliveries: number) => void,
    hold: HoldEntry<H>,
  ): Promise<void>;
  async subscribeEntries(handler: EntryHandler, hold?: HoldEntry): Promise<void> {
    if (typeof handler !== 'function')
      throw new TypeError(`handler must be a function (got ${describeValue(handler)})`);
    if (hold !== undefined && typeof hold !== 'function')
      throw new TypeError(`hold must be a function (got ${describeValue(hold)})`);
    if (!this.group) throw new InvalidOptionsError('subscribeEntries needs group mode');
    this.claimHandler();
    this.held.hold = hold;
    this.entryHandler = handler;
    await this.begin();
  }

  private claimHandler(): void {
    if (this.closed) throw new TransportClosedError('subscriber is closed');
    if (this.handler || this.entryHandler)
      throw new InvalidOptionsError('subscriber already has a handler');
  }

  private async begin(): Promise<void> {
    this.lifecycle.setState('starting');
    await Promise.all([this.reader.connect(), this.commands.connect()]);
    if (!this.running) return;
    if (this.group) {
      await this.ensureGroup(this.group.startId);
      this.lastSeenId = await this.groupPosition();
      const group = this.group;
      this.every(group.claimIntervalMs, () => this.claimStale());
      this.every(group.claimIntervalMs, () => this.probeLag());
      this.every(Math.max(1, Math.floor(group.minIdleMs / 3)), () => this.heartbeat());
      if (group.checkConsumersIntervalMs > 0)
        this.every(group.checkConsumersIntervalMs, () => this.deleteIdleConsumers());
      void this.claimStale();
      void this.probeLag();
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
    if (this.lifecycle.is('starting')) this.lifecycle.setState('reading');
  }

  /** Stops reading (interrupting a blocked read); handlers already running go on. */
  stopIntake(): Promise<void> {
    if (this.lifecycle.is('idle')) return Promise.resolve();
    this.intakeStopping ??= this.stopReading();
    return this.intakeStopping;
  }

  private async stopReading(): Promise<void> {
    if (this.lifecycle.is('starting', 'reading')) this.lifecycle.setState('stopped');
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
    this.lifecycle.setState('closing');
    await this.stopIntake();
    let timer: NodeJS.Timeout | undefined;
    const timeUp = new Promise<void>(
      resolve => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now()))),
    );
    if (this.pool.busy > 0) await Promise.race([this.pool.whenIdle(), timeUp]);
    if (this.entriesOut > 0) await Promise.race([this.whenEntriesSettled(), timeUp]);
    // Fan-out: the loop saves the cursor of a batch whose handlers finished in time.
    if (this.loop) await Promise.race([this.loop, timeUp]);
    clearTimeout(timer);
    const stuck = this.pool.busy + this.entriesOut;
    if (stuck > 0) {
      this.logger.warn(
        logLine(
          'redis',
          'closed-handlers-running',
          `closed after ${timeoutMs} ms with ${stuck} handler call(s) still running or queued (${
            this.group
              ? 'their entries stay pending for another consumer'
              : 'their batch is read again at the next start'
          })`,
          { stream: this.stream },
        ),
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
          logLine(
            'redis',
            'consumer-cleanup-failed',
            `cleanup at close failed (an idle consumer is deleted later by another): ${describe(error)}`,
            { stream: this.stream, group: this.group.name, consumer: this.group.consumer },
          ),
        );
      }
    }
    this.commands.close();
    this.limiter.flush();
    this.lifecycle.setState('closed');
    this.lifecycle.complete();
  }

  /**
   * Counters, with `inFlight` (group mode: read, not yet settled), `running`
   * (handler calls) and, in group mode once probed (every
   * `claimIntervalMs`), `lag` (entries the group has not read yet, Redis 7)
   * and `pending` (read, not acknowledged, across the group).
   */
  stats(): Readonly<Record<string, number>> {
    const stats: Record<string, number> = {
      ...this.counters,
      inFlight: this.held.size,
      running: this.pool.running + this.entriesOut,
    };
    if (this.gauges.lag !== undefined) stats.lag = this.gauges.lag;
    if (this.gauges.pending !== undefined) stats.pending = this.gauges.pending;
    return stats;
  }

  /** The subscriber's lifecycle: idle, starting, reading, stopped, closing, closed. */
  get state(): SubscriberState {
    return this.lifecycle.state;
  }

  /** Lifecycle changes (debug-logged too); `status$` reports the reader connection. */
  get lifecycle$(): Observable<StateChange<SubscriberState>> {
    return this.lifecycle.status$;
  }
}

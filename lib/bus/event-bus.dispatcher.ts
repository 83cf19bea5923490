import { describeError, stackOf } from '../common/describe-error.js';
import { logLine } from '../common/log-line.js';
import { HandlerTimeoutError, QueueFullError } from '../common/errors.js';
import type { HeraldLogger } from '../common/logger.js';
import { TaskRunner } from '../common/task-runner.js';
import { WarningLimiter } from '../common/warning-limiter.js';
import type { HeraldEvent } from '../interfaces/envelope.interface.js';
import type { Delivery, Settlement } from '../interfaces/transport.interface.js';
import type { BusInstrumentation } from '../interfaces/instrumentation.interface.js';
import type { EnvelopeFactory } from './event-bus.envelope.js';
import type { HandlerErrorContext, HandlerOutcome } from './event-bus.options.js';
import type { BusCounters } from './event-bus.stats.js';
import {
  EventValidationError,
  type EventSchemaSet,
  type SchemaCheck,
} from './event-bus.schemas.js';
import { nameOfEntry, type Found, type HandlerEntry } from './event-bus.registry.js';

/** A `postLocal(..., { wait: true })` event: the very object, and where its outcomes go. */
export interface LocalItem {
  readonly local: HeraldEvent;
  /** Every handler's outcome, in registration order. */
  readonly report?: (outcomes: HandlerOutcome[]) => void;
}

/**
 * What waits for dispatch: a transport's delivery, a `postLocal` event as
 * itself (most are not awaited: no wrapper), or an awaited one with `report`.
 */
export type Item = Delivery | LocalItem | HeraldEvent;

type Report = (outcomes: HandlerOutcome[]) => void;

function isDelivery(item: Item): item is Delivery {
  return (item as Partial<Delivery>).envelope !== undefined;
}

function isReported(item: LocalItem | HeraldEvent): item is LocalItem {
  return typeof item.local === 'object';
}

/** The names an item carries, for logs (never its data). */
function namesOf(item: Item): { source: string; event: string; id: string; origin: string } {
  if (isDelivery(item)) return item.envelope;
  return isReported(item) ? item.local : item;
}

/**
 * Per-event bookkeeping, made only once an event has a handler still
 * running or a failure: an event whose handlers all return at once costs no
 * object here.
 */
interface Running {
  readonly delivery: Delivery | undefined;
  readonly event: HeraldEvent;
  remaining: number;
  failure: unknown;
  failed: boolean;
  readonly outcomes: HandlerOutcome[] | undefined;
  readonly report: Report | undefined;
}

/** Where the dispatcher finds handlers (the bus's registry). */
export interface HandlerSource {
  /** The event's entries in order: one as itself, several (or none) as an array. */
  match(source: string, event: string): Found;
}

export interface DispatcherOptions {
  readonly handlers: HandlerSource;
  readonly factory: EnvelopeFactory;
  readonly counters: BusCounters;
  readonly logger: HeraldLogger;
  readonly concurrency: number;
  readonly maxPending: number;
  readonly handlerTimeoutMs?: number;
  readonly onHandlerError?: (error: unknown, context: HandlerErrorContext) => void;
  /** Names the transport in settle failures. */
  readonly transportName: string;
  /** Called whenever work ended (the bus's idle check). */
  readonly settled: () => void;
  /** Telemetry hooks (consumer spans, handler durations), when installed. */
  readonly instrumentation?: BusInstrumentation;
  /** The events' schemas: an event with one is validated before its handlers run. */
  readonly schemas?: EventSchemaSet;
}

const ACK: Settlement = Object.freeze({ outcome: 'ack' });

/** Whether a handler's result is a promise (or any thenable) to wait for. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  );
}

const nameOf = nameOfEntry;

/** Whether a lookup found several entries (or none) rather than one. */
function isList(found: Found): found is readonly HandlerEntry[] {
  return Array.isArray(found);
}

/**
 * Runs events through their handlers (DESIGN.md "Dispatch") on the one
 * {@link TaskRunner}: arrival order, at most `concurrency` events at once,
 * held until `start()`; per event, handlers in registration order, async
 * ones concurrently, the event settled (ack/nack) once all have; failures
 * isolated, logged, counted and passed to `onHandlerError`. A delivery that
 * no handler matches is acked without being decoded. It also knows which
 * handler calls are still running, by name, so a shutdown that times out
 * can say which.
 */
export class Dispatcher {
  /**
   * Public, with {@link plain}, {@link runClaimed}, {@link failedAlone} and
   * {@link awaitAlone}, for `EventBus.postLocal`, which runs
   * {@link runLocal}'s short path inline (issue 16: one TurboFan job fewer
   * on the path a cold app runs first); nothing else uses them.
   */
  readonly runner: TaskRunner<Item>;
  /** Handler calls still running, by entry (named when asked); a timed-out call stays until it settles. */
  private readonly active = new Map<HandlerEntry, number>();
  private running = 0;
  /** `event-invalid` lines, one per source/event per interval. */
  private readonly warnings: WarningLimiter;

  /**
   * The options the hot paths read, as fields of their own: a property read
   * fewer each, which counts while V8 still runs this code unoptimized (a
   * cold app's first events).
   */
  private readonly counters: BusCounters;
  private readonly handlers: HandlerSource;
  private readonly schemas: EventSchemaSet | undefined;
  private readonly instrumentation: BusInstrumentation | undefined;
  /** Neither schemas nor telemetry: a `postLocal` may take {@link runLocal}'s short path. */
  readonly plain: boolean;

  constructor(private readonly options: DispatcherOptions) {
    this.plain = options.schemas === undefined && options.instrumentation === undefined;
    this.counters = options.counters;
    this.handlers = options.handlers;
    this.schemas = options.schemas;
    this.instrumentation = options.instrumentation;
    this.warnings = new WarningLimiter(options.logger);
    this.runner = new TaskRunner<Item>({
      concurrency: options.concurrency,
      execute: item => this.run(item),
      onTurn: options.settled,
      holding: true,
    });
  }

  get dispatching(): boolean {
    return this.runner.started;
  }

  /** Begins dispatch: what waited runs now, in arrival order. */
  start(): void {
    if (this.runner.started) return;
    this.options.logger.debug?.('dispatcher: holding -> dispatching');
    this.runner.start();
  }

  /** Events waiting, events being handled, handler calls still running. */
  gauges(): { queued: number; inFlight: number; running: number } {
    return { queued: this.runner.queued, inFlight: this.runner.running, running: this.running };
  }

  /** True when nothing runs and nothing that could run waits. */
  isIdle(): boolean {
    return (
      this.runner.running === 0 &&
      this.running === 0 &&
      (this.runner.queued === 0 || !this.runner.started)
    );
  }

  /** `Class.method` of each handler call still running (`×n` when several). */
  runningHandlers(): string[] {
    return [...this.active].map(([entry, count]) =>
      count > 1 ? `${nameOf(entry)} ×${count}` : nameOf(entry),
    );
  }

  /** Whether a local event fits; `postLocal` refuses rather than drops. */
  assertRoom(): void {
    if (this.runner.queued >= this.options.maxPending) {
      throw new QueueFullError('incoming', this.options.maxPending);
    }
  }

  /**
   * Runs an item now when a slot is free and none waits, else queues it;
   * beyond `maxPending` waiting it is dropped (counted, logged, nacked).
   */
  enqueue(item: Item): void {
    const { runner, options } = this;
    if (runner.queued >= options.maxPending) {
      this.drop(item, new QueueFullError('incoming', options.maxPending));
      return;
    }
    runner.submit(item);
    if (runner.queued > options.counters.queueHighWater) {
      options.counters.queueHighWater = runner.queued;
    }
  }

  /**
   * A transport's delivery, as {@link enqueue} takes it: run now, in the
   * caller's turn, when a runner slot is free and nothing waits, else
   * queued. The runner's claim and release are inline (its fields are
   * public for this), the same steps as its `submit` with `execute`: a
   * transport hands over each event of a cold app's first batches through
   * here before V8 optimizes it, and each function on the way (`enqueue`,
   * `submit`, `claim`, `execute`, `release`, `released`, `turned`) was
   * compiled alone and again inside its callers (issue 16).
   */
  deliver(delivery: Delivery): void {
    const runner = this.runner;
    if (
      runner.pumping ||
      runner.holding ||
      runner.active >= runner.concurrency ||
      runner.waiting !== 0
    ) {
      this.enqueue(delivery);
      return;
    }
    // A free slot and nothing waiting: enqueue's bound (maxPending waiting,
    // at least 1) cannot refuse it, and its high-water mark stays.
    runner.pumping = true;
    runner.active++;
    let ended: boolean;
    try {
      ended = this.runDelivery(delivery);
    } catch (error) {
      runner.active--;
      runner.pumping = false;
      throw error;
    }
    // TaskRunner.release(ended), inline: the slot back, then what waits
    // runs, or the turn ends with the runner's onTurn (`settled`).
    if (ended) runner.active--;
    runner.pumping = false;
    if (runner.waiting !== 0 || runner.idleWaiters.length !== 0) runner.released();
    else this.options.settled();
  }

  /**
   * A `postLocal` event no one awaits, counted (`postedLocal`) once
   * accepted: run now, in the caller's turn, when a runner slot is free and
   * nothing waits (the handler called from here, not through the runner's
   * `execute`); else queued like any item. @throws QueueFullError when
   * `maxPending` wait.
   *
   * This is the path a cold app runs first, 10,000 times before V8 has
   * optimized it, and what V8 then compiles (on its own and again inside
   * its callers): its common case (no schemas, no telemetry, one handler
   * that returns without a promise) is a lookup, a call and two counts,
   * with every other case out of line ({@link runClaimed},
   * {@link failedAlone}, {@link awaitAlone}) and the same steps as
   * {@link handle}'s.
   */
  runLocal(event: HeraldEvent): void {
    const runner = this.runner;
    // TaskRunner.claim, inline (its fields are public for this): a function
    // fewer for V8 to compile alone on the path a cold app runs first.
    if (
      !this.plain ||
      runner.pumping ||
      runner.holding ||
      runner.active >= runner.concurrency ||
      runner.waiting !== 0
    ) {
      this.assertRoom();
      this.counters.postedLocal++;
      this.enqueue(event);
      return;
    }
    runner.pumping = true;
    runner.active++;
    this.counters.postedLocal++;
    const found = this.handlers.match(event.source, event.event);
    if (isList(found)) {
      this.runClaimed(event, found);
      return;
    }
    let result: unknown;
    try {
      result = found.handler.call(found.receiver, event.data, event);
    } catch (error) {
      this.failedAlone(event, found, error);
      return;
    }
    if (result !== undefined && isThenable(result)) {
      this.awaitAlone(event, found, result);
      return;
    }
    this.counters.handled++;
    runner.release(true);
  }

  /** {@link runLocal} for several handlers or none, its claimed slot released once they returned. */
  runClaimed(event: HeraldEvent, handlers: Found): void {
    let ended = true;
    try {
      ended = this.handleAll(undefined, event, undefined, handlers);
    } finally {
      this.runner.release(ended);
    }
  }

  /** {@link runLocal}'s lone handler threw: as {@link handle} does, then the slot is released. */
  failedAlone(event: HeraldEvent, entry: HandlerEntry, error: unknown): void {
    try {
      const running = this.track(undefined, event, undefined, undefined);
      this.handlerFailed(running, 0, entry, error);
      this.end(running);
    } finally {
      this.runner.release(true);
    }
  }

  /** {@link runLocal}'s lone handler returned a promise: as {@link handle} does; the slot is held until it settles. */
  awaitAlone(event: HeraldEvent, entry: HandlerEntry, result: PromiseLike<unknown>): void {
    let ended = true;
    try {
      const running = this.track(undefined, event, undefined, undefined);
      running.remaining++;
      this.await(running, 0, entry, result);
      if (--running.remaining > 0) ended = false;
      else this.end(running);
    } finally {
      this.runner.release(ended);
    }
  }

  /** Drops everything still queued (shutdown), each counted, logged and nacked. */
  dropAll(reason: Error): void {
    for (const item of this.runner.drain()) this.drop(item, reason);
  }

  /** Counts, logs and (for a delivery) nacks an item that will not run. */
  drop(item: Item, reason: Error): void {
    this.counters.dropped++;
    const event = namesOf(item);
    this.instrumentation?.dropped(event.source, event.event);
    this.options.logger.warn(
      logLine(
        'bus',
        'bus-event-dropped',
        `dropped event ${event.source}/${event.event}: ${reason.message}`,
        {
          source: event.source,
          event: event.event,
          id: event.id,
          origin: event.origin,
        },
      ),
    );
    if (isDelivery(item)) this.settle(item, true, reason);
    else if (isReported(item)) item.report?.([]);
  }

  /** Starts an item (the runner's `execute`). @returns true when it ended at once. */
  private run(item: Item): boolean {
    if (!isDelivery(item)) {
      if (this.schemas === undefined) {
        return isReported(item)
          ? this.handle(undefined, item.local, item.report)
          : this.handle(undefined, item, undefined);
      }
      return isReported(item)
        ? this.validate(undefined, item.local, item.report)
        : this.validate(undefined, item, undefined);
    }
    return this.runDelivery(item);
  }

  /** {@link run} for a transport's delivery. */
  private runDelivery(item: Delivery): boolean {
    const { envelope } = item;
    const handlers = this.handlers.match(envelope.source, envelope.event);
    if (isList(handlers) && handlers.length === 0) {
      // Handled by no one: acked, and never decoded.
      this.counters.unhandled++;
      this.settle(item, false);
      return true;
    }
    let event: HeraldEvent;
    try {
      event = this.options.factory.received(envelope, item.attempt);
    } catch (error) {
      return this.decodeFailed(item, error);
    }
    return this.schemas === undefined
      ? this.handle(item, event, undefined, handlers)
      : this.validate(item, event, undefined, handlers);
  }

  /** {@link runDelivery}'s codec threw: a decode error (never a handler failure), logged; the delivery nacked. */
  private decodeFailed(item: Delivery, error: unknown): boolean {
    const { envelope } = item;
    this.counters.decodeErrors++;
    this.options.logger.error(
      logLine(
        'bus',
        'bus-decode-failed',
        `cannot decode event ${envelope.source}/${envelope.event}: ${describeError(error)}`,
        {
          source: envelope.source,
          event: envelope.event,
          id: envelope.id,
          origin: envelope.origin,
          transport: this.options.transportName,
        },
      ),
    );
    this.settle(item, true, error);
    return true;
  }

  /**
   * An event whose source/event has a schema is validated before any
   * handler runs (synchronously when the schema is; an async one keeps the
   * event's slot until it settles): its handlers get the schema's output,
   * or none runs (see {@link refuse}). @returns as {@link handle}.
   */
  private validate(
    delivery: Delivery | undefined,
    event: HeraldEvent,
    report: Report | undefined,
    handlers = this.handlers.match(event.source, event.event),
  ): boolean {
    const schemas = this.schemas!;
    const schema =
      isList(handlers) && handlers.length === 0
        ? undefined
        : schemas.schemaOf(event.source, event.event);
    if (schema === undefined) return this.handle(delivery, event, report, handlers);
    const checked = schemas.check(schema, event.source, event.event, event.data, true);
    if (!(checked instanceof Promise)) {
      return this.validated(delivery, event, report, handlers, checked);
    }
    void checked.then(done => {
      if (this.validated(delivery, event, report, handlers, done)) this.runner.finished();
      this.options.settled();
    });
    return false;
  }

  private validated(
    delivery: Delivery | undefined,
    event: HeraldEvent,
    report: Report | undefined,
    handlers: Found,
    checked: SchemaCheck,
  ): boolean {
    if (!checked.ok) {
      this.refuse(delivery, event, report, handlers, checked.error);
      return true;
    }
    const valid = Object.is(checked.value, event.data) ? event : { ...event, data: checked.value };
    return this.handle(delivery, valid, report, handlers);
  }

  /**
   * An event its schema refused: no handler runs; counted (`invalid`),
   * logged without its data or the schema's messages, a delivery nacked
   * with the error (an {@link EventValidationError} is marked undecodable:
   * redis groups dead-letter it at once, other transports drop it), a
   * `postLocal` wait reported with every handler rejected.
   */
  private refuse(
    delivery: Delivery | undefined,
    event: HeraldEvent,
    report: Report | undefined,
    handlers: Found,
    error: unknown,
  ): void {
    this.counters.invalid++;
    const refused = error instanceof EventValidationError;
    this.warnings.warn(
      `invalid:${event.source}/${event.event}`,
      logLine(
        'bus',
        'event-invalid',
        (refused
          ? 'event refused by its schema before any handler ran'
          : `the schema threw on event before any handler ran: ${describeError(error)}`) +
          (delivery ? '; nacked, its handlers not called' : '; its handlers not called'),
        {
          source: event.source,
          event: event.event,
          id: event.id,
          origin: event.origin,
          attempt: event.attempt,
          path: refused ? error.path : undefined,
        },
      ),
    );
    if (delivery) this.settle(delivery, true, error);
    report?.(
      (isList(handlers) ? handlers : [handlers]).map(handler => ({
        handler: nameOf(handler),
        status: 'rejected',
        reason: error,
      })),
    );
  }

  /**
   * Calls the event's handlers in registration order. @returns true when
   * every one returned at once (the delivery, if any, is settled); false
   * when some still run, and {@link complete} ends the event later.
   */
  private handle(
    delivery: Delivery | undefined,
    event: HeraldEvent,
    report: Report | undefined,
    handlers = this.handlers.match(event.source, event.event),
  ): boolean {
    if (report !== undefined || isList(handlers) || this.instrumentation !== undefined) {
      return this.handleAll(delivery, event, report, handlers);
    }
    // One handler, no one awaiting its outcome: the common case, kept small
    // (the same steps as handleAll's for one handler), its throw and its
    // promise out of line, so V8 inlines it into the dispatch (issue 24).
    let result: unknown;
    try {
      result = handlers.handler.call(handlers.receiver, event.data, event);
    } catch (error) {
      return this.threwAlone(delivery, event, handlers, error);
    }
    if (result !== undefined && isThenable(result)) {
      return this.pendingAlone(delivery, event, handlers, result);
    }
    this.counters.handled++;
    if (delivery) this.settle(delivery, false);
    return true;
  }

  /** {@link handle}'s lone handler threw: counted, logged, reported; the delivery nacked. */
  private threwAlone(
    delivery: Delivery | undefined,
    event: HeraldEvent,
    entry: HandlerEntry,
    error: unknown,
  ): boolean {
    const running = this.track(delivery, event, undefined, undefined);
    this.handlerFailed(running, 0, entry, error);
    this.end(running);
    return true;
  }

  /** {@link handle}'s lone handler returned a promise: @returns false while it runs. */
  private pendingAlone(
    delivery: Delivery | undefined,
    event: HeraldEvent,
    entry: HandlerEntry,
    result: PromiseLike<unknown>,
  ): boolean {
    const running = this.track(delivery, event, undefined, undefined);
    running.remaining++;
    this.await(running, 0, entry, result);
    if (--running.remaining > 0) return false;
    this.end(running);
    return true;
  }

  /** {@link handle} for several handlers (or none), awaited outcomes, or telemetry. */
  private handleAll(
    delivery: Delivery | undefined,
    event: HeraldEvent,
    report: Report | undefined,
    handlers: Found,
  ): boolean {
    const list = isList(handlers);
    const count = list ? handlers.length : 1;
    if (count === 0) this.counters.unhandled++;
    const outcomes = report ? new Array<HandlerOutcome>(count) : undefined;
    let running: Running | undefined;
    const hook = this.instrumentation;
    for (let i = 0; i < count; i++) {
      const handler = list ? handlers[i] : handlers;
      let result: unknown;
      try {
        result = hook
          ? hook.handle(nameOf(handler), event, () =>
              handler.handler.call(handler.receiver, event.data, event),
            )
          : handler.handler.call(handler.receiver, event.data, event);
      } catch (error) {
        running ??= this.track(delivery, event, outcomes, report);
        this.handlerFailed(running, i, handler, error);
        continue;
      }
      if (isThenable(result)) {
        running ??= this.track(delivery, event, outcomes, report);
        running.remaining++;
        this.await(running, i, handler, result);
      } else {
        this.counters.handled++;
        if (outcomes)
          outcomes[i] = { handler: nameOf(handler), status: 'fulfilled', value: result };
      }
    }
    if (running === undefined) {
      // Every handler returned at once, none threw: the common case.
      if (report) report(outcomes!);
      if (delivery) this.settle(delivery, false);
      return true;
    }
    if (--running.remaining > 0) return false;
    this.end(running);
    return true;
  }

  private track(
    delivery: Delivery | undefined,
    event: HeraldEvent,
    outcomes: HandlerOutcome[] | undefined,
    report: Report | undefined,
  ): Running {
    return { delivery, event, remaining: 1, failure: undefined, failed: false, outcomes, report };
  }

  private await(
    running: Running,
    index: number,
    handler: HandlerEntry,
    result: PromiseLike<unknown>,
  ): void {
    this.running++;
    this.active.set(handler, (this.active.get(handler) ?? 0) + 1);
    let counted = false;
    let timer: NodeJS.Timeout | undefined;
    const count = (error: unknown, failed: boolean, value?: unknown): void => {
      if (counted) return;
      counted = true;
      if (timer) clearTimeout(timer);
      if (failed) this.handlerFailed(running, index, handler, error);
      else {
        this.counters.handled++;
        if (running.outcomes)
          running.outcomes[index] = { handler: nameOf(handler), status: 'fulfilled', value };
      }
      if (--running.remaining === 0) this.complete(running);
    };
    const ended = (): void => {
      this.running--;
      const left = this.active.get(handler)! - 1;
      if (left === 0) this.active.delete(handler);
      else this.active.set(handler, left);
    };
    const handlerTimeoutMs = handler.timeoutMs ?? this.options.handlerTimeoutMs;
    if (handlerTimeoutMs !== undefined) {
      timer = setTimeout(() => {
        this.counters.timeouts++;
        count(new HandlerTimeoutError(handlerTimeoutMs), true);
      }, handlerTimeoutMs);
    }
    Promise.resolve(result).then(
      value => {
        ended();
        count(undefined, false, value);
        this.options.settled();
      },
      (error: unknown) => {
        ended();
        count(error, true);
        this.options.settled();
      },
    );
  }

  private handlerFailed(
    running: Running,
    index: number,
    handler: HandlerEntry,
    error: unknown,
  ): void {
    this.counters.failed++;
    if (!running.failed) {
      running.failed = true;
      running.failure = error;
    }
    const name = nameOf(handler);
    if (running.outcomes)
      running.outcomes[index] = { handler: name, status: 'rejected', reason: error };
    const { event } = running;
    const context: HandlerErrorContext = {
      id: event.id,
      source: event.source,
      event: event.event,
      origin: event.origin,
      handler: name,
      attempt: event.attempt,
    };
    this.options.logger.error(
      logLine(
        'bus',
        'bus-handler-failed',
        `handler ${name} failed on ${context.source}/${context.event}: ${describeError(error)}`,
        {
          source: context.source,
          event: context.event,
          id: context.id,
          origin: context.origin,
          handler: name,
          attempt: context.attempt,
        },
      ),
      stackOf(error),
    );
    if (this.options.onHandlerError) {
      try {
        this.options.onHandlerError(error, context);
      } catch (callbackError) {
        this.options.logger.error(
          logLine(
            'bus',
            'bus-on-handler-error-threw',
            `onHandlerError threw: ${describeError(callbackError)}`,
            { source: context.source, event: context.event, id: context.id, handler: name },
          ),
        );
      }
    }
  }

  /** The last running handler of an event ended: end the event and free its slot. */
  private complete(running: Running): void {
    this.end(running);
    this.runner.finished();
  }

  /** Reports the outcomes (postLocal wait) and settles the delivery. */
  private end(running: Running): void {
    running.report?.(running.outcomes ?? []);
    if (running.delivery) this.settle(running.delivery, running.failed, running.failure);
  }

  private settle(delivery: Delivery, failed: boolean, error?: unknown): void {
    const { counters } = this.options;
    try {
      if (failed) {
        counters.nacked++;
        delivery.settle({ outcome: 'nack', error });
      } else {
        counters.acked++;
        delivery.settle(ACK);
      }
    } catch (settleError) {
      this.settleFailed(delivery, settleError);
    }
  }

  /** The transport's settle threw: logged (out of line: {@link settle} is inlined into the dispatch). */
  private settleFailed(delivery: Delivery, settleError: unknown): void {
    this.options.logger.error(
      logLine(
        'bus',
        'bus-settle-failed',
        `transport ${this.options.transportName} failed to settle: ${describeError(settleError)}`,
        {
          transport: this.options.transportName,
          source: delivery.envelope.source,
          event: delivery.envelope.event,
          id: delivery.envelope.id,
        },
      ),
    );
  }
}

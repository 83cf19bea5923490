import { describeError, stackOf } from '../common/describe-error.js';
import { HandlerTimeoutError, QueueFullError } from '../common/errors.js';
import { Fifo } from '../common/fifo.js';
import type { HeraldLogger } from '../common/logger.js';
import { StateMachine } from '../common/state-machine.js';
import type { EventHandler, HeraldEvent } from '../interfaces/envelope.interface.js';
import type { Delivery } from '../interfaces/transport.interface.js';
import type { EnvelopeFactory } from './event-bus.envelope.js';
import type { HandlerErrorContext, HandlerOutcome } from './event-bus.options.js';
import type { BusCounters } from './event-bus.stats.js';

/** A `postLocal` event: the very object, never encoded, never settled with a transport. */
export interface LocalItem {
  readonly local: HeraldEvent;
  /** For `postLocal(..., { wait: true })`: every handler's outcome, in registration order. */
  readonly report?: (outcomes: HandlerOutcome[]) => void;
}

/** What waits for dispatch: a transport's delivery, or a local event. */
export type Item = Delivery | LocalItem;

/** Per-event bookkeeping while async handlers run. */
interface Running {
  readonly item: Item;
  readonly event: HeraldEvent;
  remaining: number;
  failure: unknown;
  failed: boolean;
  readonly outcomes?: HandlerOutcome[];
}

/** Where the dispatcher finds handlers (the bus's registry). */
export interface HandlerSource {
  match(source: string, event: string): readonly EventHandler[];
  /** A handler's own timeout, overriding `handlerTimeoutMs`. */
  timeoutOf?(handler: EventHandler): number | undefined;
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
}

/** `holding`: events wait (before `start()`); `dispatching`: they run. */
type DispatchState = 'holding' | 'dispatching';
const DISPATCH_TRANSITIONS = {
  holding: ['dispatching'],
  dispatching: [],
} as const satisfies { readonly [K in DispatchState]: readonly DispatchState[] };

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  );
}

function nameOf(handler: EventHandler): string {
  return handler.name || 'anonymous';
}

/**
 * Runs events through their handlers (DESIGN.md "Dispatch"): arrival order,
 * at most `concurrency` events at once; per event, handlers in registration
 * order, async ones concurrently, the event settled (ack/nack) once all
 * have; failures isolated, logged, counted and passed to `onHandlerError`.
 * It also knows which handler calls are still running, by name, so a
 * shutdown that times out can say which.
 */
export class Dispatcher {
  private readonly queue = new Fifo<Item>();
  private readonly machine: StateMachine<DispatchState>;
  private pumping = false;
  private inFlight = 0;
  /** Handler calls still running, by `Class.method`; a timed-out call stays until it settles. */
  private readonly active = new Map<string, number>();
  private running = 0;

  constructor(private readonly options: DispatcherOptions) {
    this.machine = new StateMachine('dispatcher', 'holding', DISPATCH_TRANSITIONS, options.logger);
  }

  get dispatching(): boolean {
    return this.machine.is('dispatching');
  }

  /** Begins dispatch: what waited runs now, in arrival order. */
  start(): void {
    if (this.machine.is('dispatching')) return;
    this.machine.setState('dispatching');
    this.pump();
  }

  /** Events waiting, events being handled, handler calls still running. */
  gauges(): { queued: number; inFlight: number; running: number } {
    return { queued: this.queue.length, inFlight: this.inFlight, running: this.running };
  }

  /** True when nothing runs and nothing that could run waits. */
  isIdle(): boolean {
    return (
      this.inFlight === 0 &&
      this.running === 0 &&
      (this.queue.length === 0 || this.machine.is('holding'))
    );
  }

  /** `Class.method` of each handler call still running (`×n` when several). */
  runningHandlers(): string[] {
    return [...this.active].map(([name, count]) => (count > 1 ? `${name} ×${count}` : name));
  }

  /** Whether a local event fits; `postLocal` refuses rather than drops. */
  assertRoom(): void {
    if (this.queue.length >= this.options.maxPending) {
      throw new QueueFullError('incoming', this.options.maxPending);
    }
  }

  /** Queues an item; beyond `maxPending` it is dropped (counted, logged, nacked). */
  enqueue(item: Item): void {
    if (this.queue.length >= this.options.maxPending) {
      this.drop(item, new QueueFullError('incoming', this.options.maxPending));
      return;
    }
    this.queue.push(item);
    const { counters } = this.options;
    if (this.queue.length > counters.queueHighWater) counters.queueHighWater = this.queue.length;
    this.pump();
  }

  /** Drops everything still queued (shutdown), each counted, logged and nacked. */
  dropAll(reason: Error): void {
    for (const item of this.queue.drain()) this.drop(item, reason);
  }

  /** Counts, logs and (for a delivery) nacks an item that will not run. */
  drop(item: Item, reason: Error): void {
    this.options.counters.dropped++;
    const event = 'local' in item ? item.local : item.envelope;
    this.options.logger.warn(
      `dropped event ${event.source}/${event.event} (id ${event.id}, origin ${event.origin}): ${reason.message}`,
    );
    if ('local' in item) item.report?.([]);
    else this.settle(item, true, reason);
  }

  private pump(): void {
    if (this.pumping || !this.machine.is('dispatching')) return;
    this.pumping = true;
    try {
      while (this.inFlight < this.options.concurrency && this.queue.length > 0) {
        this.run(this.queue.shift()!);
      }
    } finally {
      this.pumping = false;
    }
    this.options.settled();
  }

  private run(item: Item): void {
    this.inFlight++;
    let event: HeraldEvent;
    if ('local' in item) {
      event = item.local;
    } else {
      try {
        event = this.options.factory.received(item.envelope, item.attempt);
      } catch (error) {
        const { envelope } = item;
        this.options.counters.decodeErrors++;
        this.options.logger.error(
          `cannot decode event ${envelope.source}/${envelope.event} (id ${envelope.id}, origin ${envelope.origin}): ${describeError(error)}`,
        );
        this.finish(item, true, error);
        return;
      }
    }
    const handlers = this.options.handlers.match(event.source, event.event);
    if (handlers.length === 0) this.options.counters.unhandled++;
    const running: Running = {
      item,
      event,
      remaining: 1,
      failure: undefined,
      failed: false,
      outcomes: 'local' in item && item.report ? new Array(handlers.length) : undefined,
    };
    for (let i = 0; i < handlers.length; i++) {
      const handler = handlers[i];
      let result: unknown;
      try {
        result = handler(event.data, event);
      } catch (error) {
        this.handlerFailed(running, i, handler, error);
        continue;
      }
      if (isThenable(result)) {
        running.remaining++;
        this.await(running, i, handler, result);
      } else {
        this.options.counters.handled++;
        if (running.outcomes) {
          running.outcomes[i] = { handler: nameOf(handler), status: 'fulfilled', value: result };
        }
      }
    }
    if (--running.remaining === 0) this.complete(running);
  }

  private await(
    running: Running,
    index: number,
    handler: EventHandler,
    result: PromiseLike<unknown>,
  ): void {
    const name = nameOf(handler);
    this.running++;
    this.active.set(name, (this.active.get(name) ?? 0) + 1);
    let counted = false;
    let timer: NodeJS.Timeout | undefined;
    const count = (error: unknown, failed: boolean, value?: unknown): void => {
      if (counted) return;
      counted = true;
      if (timer) clearTimeout(timer);
      if (failed) this.handlerFailed(running, index, handler, error);
      else {
        this.options.counters.handled++;
        if (running.outcomes)
          running.outcomes[index] = { handler: name, status: 'fulfilled', value };
      }
      if (--running.remaining === 0) this.complete(running);
    };
    const ended = (): void => {
      this.running--;
      const left = this.active.get(name)! - 1;
      if (left === 0) this.active.delete(name);
      else this.active.set(name, left);
    };
    const handlerTimeoutMs =
      this.options.handlers.timeoutOf?.(handler) ?? this.options.handlerTimeoutMs;
    if (handlerTimeoutMs !== undefined) {
      timer = setTimeout(() => {
        this.options.counters.timeouts++;
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
    handler: EventHandler,
    error: unknown,
  ): void {
    this.options.counters.failed++;
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
      `handler ${context.handler} failed on ${context.source}/${context.event} (id ${context.id}, origin ${context.origin}): ${describeError(error)}`,
      stackOf(error),
    );
    if (this.options.onHandlerError) {
      try {
        this.options.onHandlerError(error, context);
      } catch (callbackError) {
        this.options.logger.error(`onHandlerError threw: ${describeError(callbackError)}`);
      }
    }
  }

  private complete(running: Running): void {
    const { item } = running;
    if ('local' in item) item.report?.(running.outcomes ?? []);
    this.finish(item, running.failed, running.failure);
  }

  private finish(item: Item, failed: boolean, failure: unknown): void {
    this.inFlight--;
    if (!('local' in item)) this.settle(item, failed, failure);
    this.pump();
  }

  private settle(delivery: Delivery, failed: boolean, error?: unknown): void {
    const { counters } = this.options;
    try {
      if (failed) {
        counters.nacked++;
        delivery.settle({ outcome: 'nack', error });
      } else {
        counters.acked++;
        delivery.settle({ outcome: 'ack' });
      }
    } catch (settleError) {
      this.options.logger.error(
        `transport ${this.options.transportName} failed to settle: ${describeError(settleError)}`,
      );
    }
  }
}

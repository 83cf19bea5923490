import { randomUUID } from 'node:crypto';
import { BehaviorSubject, type Observable } from 'rxjs';
import { systemClock, type Clock } from '../common/clock.js';
import type { Codec } from '../interfaces/codec.interface.js';
import type { Envelope, EventHandler, HeraldEvent } from '../interfaces/envelope.interface.js';
import {
  HandlerTimeoutError,
  InvalidEventError,
  PayloadTooLargeError,
  QueueFullError,
  TransportClosedError,
} from '../common/errors.js';
import type {
  EventBusOptions,
  HandlerErrorContext,
  PostOptions,
  PostReceipt,
} from './event-bus.options.js';
import { Fifo } from '../common/fifo.js';
import { HandlerRegistry, patternsOf } from './handler-registry.js';
import { jsonCodec } from '../common/json.codec.js';
import { consoleLogger, type HeraldLogger } from '../common/logger.js';
import { processOrigin } from '../common/origin.js';
import type {
  Delivery,
  PublishResult,
  Transport,
  TransportStatus,
} from '../interfaces/transport.interface.js';

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const MAX_BATCH = 1000;
const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

interface Outgoing {
  readonly envelope: Envelope;
  resolve(receipt: PostReceipt): void;
  reject(error: unknown): void;
}

/** A `postLocal` event: the very object, never encoded, never settled with a transport. */
interface LocalItem {
  readonly local: HeraldEvent;
}

type Item = Delivery | LocalItem;

/** Per-delivery bookkeeping while async handlers run. */
interface Running {
  readonly item: Item;
  readonly event: HeraldEvent;
  remaining: number;
  failure: unknown;
  failed: boolean;
}

type Phase = 'idle' | 'connecting' | 'connected' | 'closing' | 'closed';

function validName(name: unknown, what: string): string {
  if (typeof name !== 'string' || name === '') {
    throw new InvalidEventError(`${what} must be a non-empty string`);
  }
  if (name === '*') throw new InvalidEventError(`${what} '*' is a pattern and cannot be posted`);
  return name;
}

function validKey(key: readonly (bigint | number)[]): bigint[] {
  if (!Array.isArray(key)) throw new InvalidEventError('key must be an array of int64 values');
  return key.map((part, i) => {
    if (typeof part === 'number' && Number.isSafeInteger(part)) return BigInt(part);
    if (typeof part === 'bigint' && part >= INT64_MIN && part <= INT64_MAX) return part;
    throw new InvalidEventError(`key[${i}] must be an int64 (a bigint, or a safe integer number)`);
  });
}

function validHeaders(headers: unknown): Readonly<Record<string, string>> {
  if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) {
    throw new InvalidEventError('headers must be an object of strings');
  }
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value !== 'string') throw new InvalidEventError(`headers.${name} must be a string`);
  }
  return { ...(headers as Record<string, string>) };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  );
}

function describe(error: unknown): { message: string; stack?: string } {
  if (error instanceof Error) return { message: error.message, stack: error.stack };
  return { message: String(error) };
}

/**
 * The bus: a handler registry, dispatch with settle, error isolation and the
 * codec, over one {@link Transport}. It knows nothing of Nest.
 *
 * Life: `connect()` (or the first `post`) connects the transport; events that
 * arrive before `start()` wait in a bounded buffer; `start()` begins
 * dispatch; `close()` stops intake, drains and closes the transport.
 * @publicApi
 */
export class EventBus {
  readonly transport: Transport;
  readonly origin = processOrigin();
  private readonly codec: Codec;
  private readonly logger: HeraldLogger;
  private readonly clock: Clock;
  private readonly concurrency: number;
  private readonly maxPending: number;
  private readonly handlerTimeoutMs?: number;
  private readonly onHandlerError?: EventBusOptions['onHandlerError'];
  private readonly uniqueSettings: { ttlMs: number; cacheSize: number };
  private readonly registry = new HandlerRegistry();
  private readonly outbox = new Fifo<Outgoing>();
  private readonly queue = new Fifo<Item>();
  private readonly ready$ = new BehaviorSubject<boolean>(false);
  private phase: Phase = 'idle';
  private connecting?: Promise<void>;
  private flushScheduled = false;
  private publishing = 0;
  private started = false;
  private pumping = false;
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private closing?: Promise<void>;
  private lastNow = NaN;
  private lastIso = '';
  private readonly counters = {
    posted: 0,
    postedLocal: 0,
    publishFailed: 0,
    delivered: 0,
    handled: 0,
    failed: 0,
    timeouts: 0,
    decodeErrors: 0,
    unhandled: 0,
    dropped: 0,
    acked: 0,
    nacked: 0,
    queueHighWater: 0,
  };

  constructor(options: EventBusOptions) {
    this.transport = options.transport;
    this.codec = options.codec ?? jsonCodec;
    this.logger = options.logger ?? consoleLogger;
    this.clock = options.clock ?? systemClock;
    this.concurrency = options.concurrency ?? 1;
    this.maxPending = options.maxPending ?? 10240;
    this.handlerTimeoutMs = options.handlerTimeoutMs;
    this.onHandlerError = options.onHandlerError;
    this.uniqueSettings = {
      ttlMs: options.unique?.ttlMs ?? 2000,
      cacheSize: options.unique?.cacheSize ?? 1024,
    };
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) {
      throw new RangeError('concurrency must be an integer >= 1');
    }
    if (!Number.isInteger(this.maxPending) || this.maxPending < 1) {
      throw new RangeError('maxPending must be an integer >= 1');
    }
    if (this.handlerTimeoutMs !== undefined && !(this.handlerTimeoutMs > 0)) {
      throw new RangeError('handlerTimeoutMs must be > 0');
    }
  }

  /** The transport's connection status. */
  get status$(): Observable<TransportStatus> {
    return this.transport.status$;
  }

  /** Connects the transport (once); posts made before wait for it. */
  connect(): Promise<void> {
    if (this.phase === 'closing' || this.phase === 'closed') {
      return Promise.reject(new TransportClosedError('event bus is closed'));
    }
    this.connecting ??= this.openTransport();
    return this.connecting;
  }

  private async openTransport(): Promise<void> {
    this.phase = 'connecting';
    await this.transport.connect({
      deliver: delivery => this.receive(delivery),
      logger: this.logger,
      unique: this.uniqueSettings,
      clock: this.clock,
    });
    if (this.phase === 'connecting') this.phase = 'connected';
    this.updateReady();
    this.scheduleFlush();
  }

  /** Begins dispatch: buffered events run now, in arrival order. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.updateReady();
    this.pump();
  }

  /** Resolves once the transport is connected and dispatch has started. */
  waitUntilReady(): Promise<void> {
    return new Promise((resolve, reject) => {
      const subscription = this.ready$.subscribe({
        next: ready => {
          if (ready) {
            resolve();
            queueMicrotask(() => subscription.unsubscribe());
          }
        },
        complete: () => reject(new TransportClosedError('event bus closed before it was ready')),
      });
    });
  }

  private updateReady(): void {
    const ready = this.phase === 'connected' && this.started;
    if (ready !== this.ready$.value) this.ready$.next(ready);
  }

  /**
   * Adds a handler: no source = every event; a source = every event of it;
   * source + events = those; `'*'` + events = those events of any source.
   * @returns a disposer that unregisters exactly these patterns.
   */
  register(handler: EventHandler, source?: string, ...events: string[]): () => boolean {
    if (typeof handler !== 'function') throw new TypeError('handler must be a function');
    const patterns = patternsOf(source, events);
    this.registry.add(handler, patterns);
    return () => this.registry.remove(handler, patterns);
  }

  /**
   * Removes a handler's patterns; with no source, every pattern of the
   * handler. @returns true if something was removed.
   */
  unregister(handler: EventHandler, source?: string, ...events: string[]): boolean {
    if (typeof handler !== 'function') throw new TypeError('handler must be a function');
    return this.registry.remove(
      handler,
      source === undefined ? undefined : patternsOf(source, events),
    );
  }

  /**
   * Posts to every process the transport reaches, this one included. Resolves
   * once the transport accepted the event; rejects with a typed error, before
   * anything is sent, for bad names, data, key or headers.
   */
  post(source: string, event: string, data?: unknown, options?: PostOptions): Promise<PostReceipt> {
    let envelope: Envelope;
    try {
      envelope = this.envelope(source, event, data, options);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.phase === 'closing' || this.phase === 'closed') {
      return Promise.reject(new TransportClosedError('event bus is closed'));
    }
    if (this.outbox.length >= this.maxPending) {
      return Promise.reject(new QueueFullError('outgoing', this.maxPending));
    }
    this.counters.posted++;
    return new Promise<PostReceipt>((resolve, reject) => {
      this.outbox.push({ envelope, resolve, reject });
      this.scheduleFlush();
    });
  }

  /** Builds and validates an envelope; throws the typed error of the first problem. */
  envelope(source: string, event: string, data?: unknown, options: PostOptions = {}): Envelope {
    validName(source, 'source');
    validName(event, 'event');
    const payload = this.codec.encode(data);
    const limit = this.transport.features.maxPayloadBytes;
    if (limit !== undefined && payload.length * 3 > limit) {
      const size = Buffer.byteLength(payload);
      if (size > limit) throw new PayloadTooLargeError(size, limit);
    }
    if (
      options.unique !== undefined &&
      (typeof options.unique !== 'string' || options.unique === '')
    ) {
      throw new InvalidEventError('unique must be a non-empty string');
    }
    const tx = options.tx;
    if (tx !== undefined) {
      if (!this.transport.features.postsInTransaction)
        throw new InvalidEventError(
          `tx: the ${this.transport.name} transport cannot post in a transaction`,
        );
      if (typeof (tx as { query?: unknown } | null)?.query !== 'function')
        throw new InvalidEventError('tx must be a database client with query(text, values)');
    }
    return {
      id: randomUUID(),
      source,
      event,
      payload,
      key: options.key === undefined ? undefined : validKey(options.key),
      unique: options.unique,
      origin: this.origin,
      occurredAt: this.isoNow(),
      headers: options.headers === undefined ? undefined : validHeaders(options.headers),
      // Only when given: every other envelope keeps its shape.
      ...(tx === undefined ? {} : { transportOptions: { tx } }),
    };
  }

  /** The clock's time as ISO-8601; formatting a Date is costly, so once per millisecond. */
  private isoNow(): string {
    const now = this.clock.now();
    if (now !== this.lastNow) {
      this.lastNow = now;
      this.lastIso = new Date(now).toISOString();
    }
    return this.lastIso;
  }

  /**
   * Runs this process's handlers with the very object: no codec, no transport,
   * no unique. Throws {@link QueueFullError} when `maxPending` events already
   * wait for dispatch, rather than dropping the event.
   */
  postLocal(source: string, event: string, data?: unknown): void {
    validName(source, 'source');
    validName(event, 'event');
    if (this.phase === 'closing' || this.phase === 'closed') {
      throw new TransportClosedError('event bus is closed');
    }
    if (this.queue.length >= this.maxPending) throw new QueueFullError('incoming', this.maxPending);
    this.counters.postedLocal++;
    const local: HeraldEvent = {
      id: randomUUID(),
      source,
      event,
      data,
      origin: this.origin,
      occurredAt: this.isoNow(),
      headers: NO_HEADERS,
      local: true,
      attempt: 1,
    };
    this.enqueue({ local });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.outbox.length === 0) return;
    if (this.phase === 'idle') {
      this.connect().catch(() => undefined);
      return;
    }
    if (this.phase === 'connecting') return;
    this.flushScheduled = true;
    queueMicrotask(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    while (this.outbox.length > 0) {
      const batch: Outgoing[] = [];
      while (batch.length < MAX_BATCH && this.outbox.length > 0) batch.push(this.outbox.shift()!);
      this.publishing++;
      this.transport.publish(batch.map(outgoing => outgoing.envelope)).then(
        results => this.published(batch, results),
        error => {
          for (const outgoing of batch) outgoing.reject(error);
          this.counters.publishFailed += batch.length;
          this.publishing--;
          this.notifyIdle();
        },
      );
    }
  }

  private published(batch: Outgoing[], results: readonly PublishResult[]): void {
    for (let i = 0; i < batch.length; i++) {
      const result = results[i];
      const outgoing = batch[i];
      if (result?.ok) {
        outgoing.resolve(
          result.ref === undefined
            ? { id: outgoing.envelope.id }
            : { id: outgoing.envelope.id, ref: result.ref },
        );
      } else {
        this.counters.publishFailed++;
        outgoing.reject(result?.error ?? new Error('transport returned no result for this event'));
      }
    }
    this.publishing--;
    this.notifyIdle();
  }

  /** The transport hands an envelope over. */
  private receive(delivery: Delivery): void {
    this.counters.delivered++;
    if (this.phase === 'closed') {
      this.drop(delivery, new TransportClosedError('event bus is closed'));
      return;
    }
    this.enqueue(delivery);
  }

  private enqueue(item: Item): void {
    if (this.queue.length >= this.maxPending) {
      this.drop(item, new QueueFullError('incoming', this.maxPending));
      return;
    }
    this.queue.push(item);
    if (this.queue.length > this.counters.queueHighWater) {
      this.counters.queueHighWater = this.queue.length;
    }
    this.pump();
  }

  private drop(item: Item, reason: Error): void {
    this.counters.dropped++;
    const event = 'local' in item ? item.local : item.envelope;
    this.logger.warn(
      `dropped event ${event.source}/${event.event} (id ${event.id}, origin ${event.origin}): ${reason.message}`,
    );
    if (!('local' in item)) this.settle(item, true, reason);
  }

  private pump(): void {
    if (!this.started || this.pumping) return;
    this.pumping = true;
    try {
      while (this.inFlight < this.concurrency && this.queue.length > 0) {
        this.run(this.queue.shift()!);
      }
    } finally {
      this.pumping = false;
    }
    this.notifyIdle();
  }

  private run(item: Item): void {
    this.inFlight++;
    let event: HeraldEvent;
    if ('local' in item) {
      event = item.local;
    } else {
      const envelope = item.envelope;
      let data: unknown;
      try {
        data = this.codec.decode(envelope.payload);
      } catch (error) {
        this.counters.decodeErrors++;
        this.logger.error(
          `cannot decode event ${envelope.source}/${envelope.event} (id ${envelope.id}, origin ${envelope.origin}): ${describe(error).message}`,
        );
        this.finish(item, true, error);
        return;
      }
      event = {
        id: envelope.id,
        source: envelope.source,
        event: envelope.event,
        data,
        key: envelope.key,
        unique: envelope.unique,
        origin: envelope.origin,
        occurredAt: envelope.occurredAt,
        headers: envelope.headers ?? NO_HEADERS,
        local: false,
        attempt: item.attempt,
      };
    }
    const handlers = this.registry.match(event.source, event.event);
    if (handlers.length === 0) this.counters.unhandled++;
    const running: Running = { item, event, remaining: 1, failure: undefined, failed: false };
    for (const handler of handlers) {
      let result: unknown;
      try {
        result = handler(event.data, event);
      } catch (error) {
        this.handlerFailed(running, handler, error);
        continue;
      }
      if (isThenable(result)) {
        running.remaining++;
        this.await(running, handler, result);
      } else {
        this.counters.handled++;
      }
    }
    if (--running.remaining === 0) this.finish(item, running.failed, running.failure);
  }

  private await(running: Running, handler: EventHandler, result: PromiseLike<unknown>): void {
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const settle = (error?: unknown, failed = false): void => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      if (failed) this.handlerFailed(running, handler, error);
      else this.counters.handled++;
      if (--running.remaining === 0) this.finish(running.item, running.failed, running.failure);
    };
    if (this.handlerTimeoutMs !== undefined) {
      const timeoutMs = this.handlerTimeoutMs;
      timer = setTimeout(() => {
        this.counters.timeouts++;
        settle(new HandlerTimeoutError(timeoutMs), true);
      }, timeoutMs);
    }
    Promise.resolve(result).then(
      () => settle(),
      error => settle(error, true),
    );
  }

  private handlerFailed(running: Running, handler: EventHandler, error: unknown): void {
    this.counters.failed++;
    if (!running.failed) {
      running.failed = true;
      running.failure = error;
    }
    const { event } = running;
    const context: HandlerErrorContext = {
      id: event.id,
      source: event.source,
      event: event.event,
      origin: event.origin,
      handler: handler.name || 'anonymous',
      attempt: event.attempt,
    };
    const { message, stack } = describe(error);
    this.logger.error(
      `handler ${context.handler} failed on ${context.source}/${context.event} (id ${context.id}, origin ${context.origin}): ${message}`,
      stack,
    );
    if (this.onHandlerError) {
      try {
        this.onHandlerError(error, context);
      } catch (callbackError) {
        this.logger.error(`onHandlerError threw: ${describe(callbackError).message}`);
      }
    }
  }

  private finish(item: Item, failed: boolean, failure: unknown): void {
    this.inFlight--;
    if (!('local' in item)) this.settle(item, failed, failure);
    this.pump();
  }

  private settle(delivery: Delivery, failed: boolean, error?: unknown): void {
    try {
      if (failed) {
        this.counters.nacked++;
        delivery.settle({ outcome: 'nack', error });
      } else {
        this.counters.acked++;
        delivery.settle({ outcome: 'ack' });
      }
    } catch (error) {
      this.logger.error(
        `transport ${this.transport.name} failed to settle: ${describe(error).message}`,
      );
    }
  }

  private notifyIdle(): void {
    if (this.idleWaiters.length === 0 || !this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const waiter of waiters) waiter();
  }

  private isIdle(): boolean {
    return (
      this.inFlight === 0 &&
      (this.queue.length === 0 || !this.started) &&
      this.outbox.length === 0 &&
      this.publishing === 0
    );
  }

  /** Shutdown step one: the transport stops taking new deliveries in. */
  async stopIntake(): Promise<void> {
    await this.transport.stopIntake?.();
  }

  /**
   * Waits until nothing is queued, running or being published, for at most
   * `timeoutMs`. @returns true when drained in time.
   */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.isIdle()) return Promise.resolve(true);
    return new Promise(resolve => {
      const timer = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter(waiter => waiter !== done);
        resolve(false);
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      this.idleWaiters.push(done);
    });
  }

  /**
   * Stops intake, refuses new posts, lets queued and running handlers finish
   * for at most `timeoutMs` (then nacks what is left), flushes what was
   * posted, and closes the transport. Idempotent.
   */
  close(options: { timeoutMs?: number } = {}): Promise<void> {
    this.closing ??= this.shutdown(options.timeoutMs ?? 10_000);
    return this.closing;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    const wasOpen = this.phase === 'connected' || this.phase === 'connecting';
    this.phase = 'closing';
    this.updateReady();
    if (wasOpen) {
      await this.connecting?.catch(() => undefined);
      this.scheduleFlush();
      await this.stopIntake().catch(error =>
        this.logger.error(
          `transport ${this.transport.name} failed to stop intake: ${describe(error).message}`,
        ),
      );
      if (!(await this.drain(timeoutMs))) {
        this.logger.warn(
          `shutdown timeout of ${timeoutMs} ms reached with ${this.inFlight} event(s) running and ${this.queue.length} queued`,
        );
      }
    }
    for (const left of this.queue.drain())
      this.drop(left, new TransportClosedError('event bus closed before dispatch'));
    for (const outgoing of this.outbox.drain())
      outgoing.reject(new TransportClosedError('event bus is closed'));
    this.phase = 'closed';
    this.ready$.complete();
    this.registry.clear();
    await this.transport.close();
  }

  /** The bus's counters and gauges, with the transport's under `transport`. */
  stats(): EventBusStats {
    return {
      ...this.counters,
      queued: this.queue.length,
      inFlight: this.inFlight,
      handlers: this.registry.size,
      transport: this.transport.stats(),
    };
  }
}

/** Counters of {@link EventBus.stats}. @publicApi */
export interface EventBusStats {
  readonly posted: number;
  readonly postedLocal: number;
  readonly publishFailed: number;
  readonly delivered: number;
  readonly handled: number;
  readonly failed: number;
  readonly timeouts: number;
  readonly decodeErrors: number;
  readonly unhandled: number;
  readonly dropped: number;
  readonly acked: number;
  readonly nacked: number;
  readonly queueHighWater: number;
  readonly queued: number;
  readonly inFlight: number;
  readonly handlers: number;
  readonly transport: Readonly<Record<string, number>>;
}

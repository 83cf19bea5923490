import { BehaviorSubject, type Observable } from 'rxjs';
import { describeValue } from '../common/options.validation.js';
import type { Clock } from '../common/clock.js';
import { describeError } from '../common/describe-error.js';
import { EnvelopeRecord } from '../common/envelope-record.js';
import { fastStringPrototype } from '../common/fast-string-prototype.js';
import { currentInstrumentation } from '../common/instrumentation.js';
import { logLine } from '../common/log-line.js';
import { TransportClosedError } from '../common/errors.js';
import type { HeraldLogger } from '../common/logger.js';
import { StateMachine } from '../common/state-machine.js';
import type { Envelope, EventHandler, HeraldEvent } from '../interfaces/envelope.interface.js';
import type { Delivery, Transport } from '../interfaces/transport.interface.js';
import type { BusInstrumentation } from '../interfaces/instrumentation.interface.js';
import { Dispatcher, isThenable } from './event-bus.dispatcher.js';
import { EnvelopeFactory, NO_HEADERS } from './event-bus.envelope.js';
import { busOrigin, ID_DIGITS, ID_LENGTH, ID_TEXT_LENGTH, ROPE_BLOCK } from './event-bus.ids.js';
import { IdleWaiters } from './event-bus.idle.js';
import { BusDrainingError, IdleTimeoutError } from './event-bus.errors.js';
import {
  resolveEventBusOptions,
  type EventBusOptions,
  type HandlerOutcome,
  type LocalPostOptions,
  type PostOptions,
  type PostReceipt,
} from './event-bus.options.js';
import { callTransport, Outbox } from './event-bus.outbox.js';
import { busCounters, type EventBusStats } from './event-bus.stats.js';
import {
  BUS_TRANSITIONS,
  busStatus$,
  pick,
  type EventBusState,
  type EventBusStatus,
} from './event-bus.state.js';
import {
  HandlerRegistry,
  patternsOf,
  resolveHandlerOptions,
  splitHandlerArgs,
  type HandlerEntry,
  type HandlerOptions,
  type HandlerTarget,
  type Pattern,
} from './event-bus.registry.js';
import { LoopbackWatch } from './event-bus.loopback.js';
import { EventSchemaSet } from './event-bus.schemas.js';

export type { EventBusStats } from './event-bus.stats.js';
export type { EventBusState, EventBusStatus } from './event-bus.state.js';

/**
 * The bus: a handler registry, dispatch with settle, error isolation and the
 * codec, over one {@link Transport}. It knows nothing of Nest. Its parts:
 * {@link EnvelopeFactory} (what is sent), {@link Outbox} (posts on their way
 * to the transport), {@link Dispatcher} (handlers), {@link IdleWaiters}
 * (drain); this class holds the life (one state machine) and the API.
 *
 * Life: `connect()` (or the first `post`) connects the transport; events that
 * arrive before `start()` wait in a bounded buffer; `start()` begins
 * dispatch; `close()` stops intake, drains and closes the transport.
 * @publicApi
 */
export class EventBus {
  readonly transport: Transport;
  /**
   * What this bus's posts carry as `origin`: the process (host, pid and a
   * per-process instance id) and this bus's number within it, so two apps
   * of one process tell their own posts apart.
   */
  readonly origin = busOrigin();
  private readonly logger: HeraldLogger;
  private readonly clock: Clock;
  private readonly uniqueSettings: { ttlMs: number; cacheSize: number };
  private readonly registry = new HandlerRegistry();
  private readonly counters = busCounters();
  private readonly factory: EnvelopeFactory;
  private readonly outbox: Outbox;
  private readonly dispatcher: Dispatcher;
  private readonly idle: IdleWaiters;
  private readonly loopback: LoopbackWatch;
  private readonly ready$ = new BehaviorSubject<boolean>(false);
  private readonly machine: StateMachine<EventBusState, { role: string }>;
  private connecting?: Promise<void>;
  /** close() stopped waiting for the pending connect: it counts as failed. */
  private connectAbandoned = false;
  /** Why `connect()` failed: every later post rejects with it. */
  private failure?: unknown;
  private closing?: Promise<void>;
  /** Telemetry hooks, when `nest-herald/otel` installed them before this bus was built. */
  private readonly instrumentation?: BusInstrumentation;
  /** The events' schemas (option `schemas`), when given. */
  private readonly schemas?: EventSchemaSet;
  /** Neither schemas nor telemetry: a post without options may take {@link post}'s short path. */
  private readonly plainPosts: boolean;

  /** @throws InvalidOptionsError naming the option, the rule and the value given. */
  constructor(options: EventBusOptions) {
    const resolved = resolveEventBusOptions(options);
    // Posts slice each id from its block's text (event-bus.ids.ts): a string
    // method, generic while String.prototype is in setup mode.
    fastStringPrototype();
    this.transport = resolved.transport;
    this.logger = resolved.logger;
    this.clock = resolved.clock;
    this.uniqueSettings = resolved.unique;
    this.schemas = resolved.schemas ? new EventSchemaSet(resolved.schemas) : undefined;
    this.machine = new StateMachine(
      `event bus (${this.transport.name})`,
      'idle',
      BUS_TRANSITIONS,
      this.logger,
    );
    this.idle = new IdleWaiters(
      () => this.dispatcher.isIdle() && !this.outbox.busy && this.loopback.size === 0,
    );
    this.loopback = new LoopbackWatch(this.transport.features, this.origin, resolved.maxPending);
    const settled = (): void => this.idle.notify();
    this.instrumentation = currentInstrumentation()?.bus(
      this.transport.name,
      () => this.stats(),
      this.logger,
    );
    this.factory = new EnvelopeFactory(
      resolved.codec,
      this.origin,
      this.clock,
      this.transport.features.maxPayloadBytes,
      {
        name: this.transport.name,
        postsInTransaction: this.transport.features.postsInTransaction === true,
      },
      // What leaves the process has its ids written by the transport.
      this.transport.features.reach !== 'process',
    );
    this.outbox = new Outbox(
      this.transport,
      resolved.maxPending,
      this.counters,
      this.logger,
      settled,
      // A post the transport refused never comes back: stop waiting for it.
      envelope => this.loopback.refused(envelope),
    );
    this.dispatcher = new Dispatcher({
      handlers: this.registry,
      factory: this.factory,
      counters: this.counters,
      logger: this.logger,
      concurrency: resolved.concurrency,
      maxPending: resolved.maxPending,
      handlerTimeoutMs: resolved.handlerTimeoutMs,
      onHandlerError: resolved.onHandlerError,
      transportName: this.transport.name,
      settled,
      instrumentation: this.instrumentation,
      schemas: this.schemas,
    });
    this.plainPosts = this.instrumentation === undefined && this.schemas === undefined;
  }

  /** The bus's state. */
  get state(): EventBusState {
    return this.machine.state;
  }

  /**
   * The one status feed. Until the transport's `connect()` resolves:
   * `connecting`, or `reconnecting` with the cause of the failed attempt
   * (posts wait); if it gives up, `disconnected` with that cause (`bus:
   * 'failed'`: posts reject with it). Once connected, the transport's own
   * status (`connected`, `reconnecting`, `disconnected`, with its `role`);
   * `closed` at the end, then it completes. `bus` always says the bus's state.
   */
  get status$(): Observable<EventBusStatus> {
    return busStatus$(this.machine.status$, this.transport.status$);
  }

  /**
   * Connects the transport (once); posts made before wait for it, in the
   * bounded buffer. Rejects with the transport's error when its `connect()`
   * gives up; every waiting and later post then rejects with it too.
   */
  connect(): Promise<void> {
    if (this.connecting && this.closing === undefined) return this.connecting;
    if (this.machine.is('closing', 'closed')) {
      return Promise.reject(new TransportClosedError('event bus is closed'));
    }
    this.connecting ??= this.openTransport();
    return this.connecting;
  }

  private async openTransport(): Promise<void> {
    this.machine.setState('connecting');
    // While connect() is pending, the transport's failed attempts show as
    // `reconnecting` with their cause: posts wait, nothing is lost yet.
    const watch = this.transport.status$.subscribe(status => {
      if (!this.machine.is('connecting', 'reconnecting')) return;
      if (status.state === 'reconnecting' || status.state === 'disconnected') {
        this.machine.setState('reconnecting', status.reason, pick(status.role));
      } else if (status.state === 'connecting') {
        this.machine.setState('connecting', status.reason, pick(status.role));
      }
    });
    try {
      await callTransport(() =>
        this.transport.connect({
          deliver: delivery => this.receive(delivery),
          logger: this.logger,
          unique: this.uniqueSettings,
          clock: this.clock,
        }),
      );
    } catch (error) {
      this.fail(error);
      throw error;
    } finally {
      watch.unsubscribe();
    }
    // A transport may resolve a connect that close() ended (redis does): the
    // bus was closed before it connected, and its caller must not read success.
    if (this.connectAbandoned) {
      throw new TransportClosedError('event bus closed before the transport connected');
    }
    if (this.machine.is('connecting', 'reconnecting')) this.machine.setState('connected');
    this.updateReady();
  }

  /** The transport gave up connecting: every waiting post rejects with its cause. */
  private fail(error: unknown): void {
    this.failure = error;
    if (this.machine.is('connecting', 'reconnecting')) {
      this.machine.setState('failed', describeError(error));
    }
    const waiting = this.outbox.rejectAll(error);
    this.counters.publishFailed += waiting.length;
    // close() ended a connect that had not finished: the shutdown warned already.
    if (this.closing !== undefined && error instanceof TransportClosedError) {
      this.idle.notify();
      return;
    }
    const first = waiting[0];
    this.logger.error(
      logLine(
        'bus',
        'bus-connect-failed',
        `transport ${this.transport.name} failed to connect: ${describeError(error)}` +
          (waiting.length > 0 ? `; ${waiting.length} waiting post(s) rejected` : ''),
        {
          transport: this.transport.name,
          rejected: waiting.length,
          source: first?.source,
          event: first?.event,
          id: first?.id,
        },
      ),
    );
    this.idle.notify();
  }

  /** Begins dispatch: buffered events run now, in arrival order. */
  start(): void {
    this.dispatcher.start();
    this.updateReady();
  }

  /** Resolves once the transport is connected and dispatch has started. */
  waitUntilReady(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.failure !== undefined) {
        reject(this.failure);
        return;
      }
      const subscription = this.ready$.subscribe({
        next: ready => {
          if (ready) {
            resolve();
            queueMicrotask(() => subscription.unsubscribe());
          }
        },
        complete: () =>
          reject(this.failure ?? new TransportClosedError('event bus closed before it was ready')),
      });
    });
  }

  private updateReady(): void {
    const ready = this.machine.is('connected') && this.dispatcher.dispatching;
    if (ready !== this.ready$.value) this.ready$.next(ready);
  }

  /**
   * Adds a handler: no source = every event; a source = every event of it;
   * source + events = those; `'*'` + events = those events of any source.
   * A trailing {@link HandlerOptions} object (`{ prepend, timeoutMs }`)
   * applies when the handler is first registered.
   * @returns a disposer that unregisters exactly these patterns.
   */
  register(
    handler: EventHandler,
    source?: string,
    ...events: (string | HandlerOptions)[]
  ): () => boolean {
    if (typeof handler !== 'function')
      throw new TypeError(`handler must be a function (got ${describeValue(handler)})`);
    const split = splitHandlerArgs(events);
    const patterns = patternsOf(source, split.events);
    const options =
      split.options === undefined
        ? undefined
        : resolveHandlerOptions(`register(${handler.name || 'handler'})`, split.options);
    this.registry.add(handler, patterns, options);
    return () => this.registry.remove(handler, patterns);
  }

  /**
   * Registers a handler its caller keeps track of (the explorer's
   * `@OnEvent` methods: the method and its instance, no closure each) under
   * checked patterns. @returns its entry, for {@link unregisterEntry}.
   * @internal
   */
  registerEntry(
    target: HandlerTarget,
    patterns: readonly Pattern[],
    options?: HandlerOptions,
  ): HandlerEntry {
    return this.registry.addEntry(target, patterns, options);
  }

  /** Removes every pattern of a {@link registerEntry} entry. @internal */
  unregisterEntry(entry: HandlerEntry): boolean {
    return this.registry.removeEntry(entry);
  }

  /**
   * Removes a handler's patterns; with no source, every pattern of the
   * handler. @returns true if something was removed.
   */
  unregister(handler: EventHandler, source?: string, ...events: string[]): boolean {
    if (typeof handler !== 'function')
      throw new TypeError(`handler must be a function (got ${describeValue(handler)})`);
    return this.registry.remove(
      handler,
      source === undefined ? undefined : patternsOf(source, events),
    );
  }

  /**
   * Posts to every process the transport reaches, this one included. Resolves
   * once the transport accepted the event; rejects with a typed error, before
   * anything is sent, for bad names, data, key or headers; with a schema
   * for the event (option `schemas`), with `EventValidationError` naming the
   * path when the schema refuses the data (an async schema is awaited
   * first: such a post may be overtaken by later ones). The data goes out
   * as given.
   */
  post(source: string, event: string, data?: unknown, options?: PostOptions): Promise<PostReceipt> {
    // The common post (no options, no schemas, no telemetry, valid names, a
    // connected bus with room) in this one function, every other case out
    // of line through {@link send}, which does the same steps in the same
    // order. A cold app runs this 10,000 times before V8 optimizes it, and
    // while the optimizing compiler works on a background thread the main
    // thread keeps running it unoptimized, so each function on the way
    // reaches its own budget and is compiled alone, again with everything
    // it inlines (issue 16: post -> send -> EnvelopeFactory.envelope was
    // compiled three times over, 57 M instructions of 182 M in the first
    // pass).
    if (options !== undefined || !this.plainPosts)
      return this.postWith(source, event, data, options);
    if (
      typeof source !== 'string' ||
      typeof event !== 'string' ||
      // A name of one character or none is rare: tested only then (the
      // typed error comes from the general path, names first).
      (source.length < 2 && (source.length === 0 || source === '*')) ||
      (event.length < 2 && (event.length === 0 || event === '*')) ||
      // Not connected (not yet, draining, closing...): the general path
      // says whether the post waits or is refused.
      this.machine.state !== 'connected' ||
      !this.outbox.hasRoom()
    ) {
      return this.send(source, event, data, undefined);
    }
    // EnvelopeFactory.envelope's steps, inline (its reading of the clock and
    // its id block are readable for this): the payload, its size, then the
    // envelope with the same fields in the same order.
    const factory = this.factory;
    let payload: string;
    try {
      payload = factory.codec.encode(data);
    } catch (error) {
      return Promise.reject(error);
    }
    const limit = factory.maxPayloadBytes;
    if (limit !== undefined && payload.length * 3 > limit) {
      const tooLarge = factory.oversize(payload);
      if (tooLarge !== undefined) return Promise.reject(tooLarge);
    }
    const ids = factory.ids;
    let id: string;
    if (factory.flatIds) {
      if (ids.offset === ID_TEXT_LENGTH) ids.renew();
      const at = ids.offset;
      ids.offset = at + ID_LENGTH;
      id = ids.text.slice(at, at + ID_LENGTH);
    } else {
      if (ids.next === ROPE_BLOCK) ids.renewPrefix();
      id = ids.prefix + ID_DIGITS[ids.next++];
    }
    let occurredAt: string;
    if (factory.readingUses > 0) {
      factory.readingUses--;
      occurredAt = factory.lastIso;
    } else {
      occurredAt = factory.isoNow();
    }
    // A class instance, not a literal: V8 never pretenures it (see EnvelopeRecord).
    const envelope: Envelope = new EnvelopeRecord(
      id,
      source,
      event,
      payload,
      this.origin,
      occurredAt,
    );
    this.counters.posted++;
    this.loopback.expect(envelope);
    const outbox = this.outbox;
    const receipt = outbox.add(envelope);
    if (!outbox.scheduled) outbox.schedule(this.connect());
    return receipt;
  }

  /** {@link post} with options, schemas or telemetry. */
  private postWith(
    source: string,
    event: string,
    data: unknown,
    options: PostOptions | undefined,
  ): Promise<PostReceipt> {
    if (this.instrumentation !== undefined) {
      return this.instrumentation.post(source, event, options, o =>
        this.checkedSend(source, event, data, o),
      );
    }
    return this.schemas === undefined
      ? this.send(source, event, data, options)
      : this.checkedSend(source, event, data, options);
  }

  /** `send`, once the event's schema, if it has one, accepted the data. */
  private checkedSend(
    source: string,
    event: string,
    data: unknown,
    options: PostOptions | undefined,
  ): Promise<PostReceipt> {
    const schema = this.schemas?.schemaOf(source, event);
    if (schema === undefined) return this.send(source, event, data, options);
    const checked = this.schemas!.check(schema, source, event, data, false);
    if (!(checked instanceof Promise)) {
      return checked.ok ? this.send(source, event, data, options) : Promise.reject(checked.error);
    }
    return checked.then(done =>
      done.ok ? this.send(source, event, data, options) : Promise.reject(done.error),
    );
  }

  private send(
    source: string,
    event: string,
    data: unknown,
    options: PostOptions | undefined,
  ): Promise<PostReceipt> {
    let envelope: Envelope;
    try {
      envelope = this.factory.envelope(source, event, data, options);
    } catch (error) {
      return Promise.reject(error);
    }
    const state = this.machine.state;
    if (state !== 'connected') {
      const refused = this.refusal(state, source, event);
      if (refused !== undefined) return refused;
    }
    const outbox = this.outbox;
    if (!outbox.hasRoom()) return Promise.reject(outbox.fullError());
    this.counters.posted++;
    this.loopback.expect(envelope);
    const receipt = outbox.add(envelope);
    // connect() only for the first post of a flush: the later ones of the
    // same turn go out with it.
    if (!outbox.scheduled) outbox.schedule(this.connect());
    return receipt;
  }

  /** Why a post made in `state` (not connected) is refused, as its rejection; undefined: it may wait. */
  private refusal(
    state: EventBusState,
    source: string,
    event: string,
  ): Promise<PostReceipt> | undefined {
    if (state === 'closing' || state === 'closed') {
      return Promise.reject(new TransportClosedError('event bus is closed'));
    }
    if (state === 'failed') return Promise.reject(this.failure);
    // Once draining, a post on a transport that stays in this process would
    // never be handled: refused. Elsewhere it still goes to the others.
    if (state === 'draining' && this.transport.features.reach === 'process') {
      this.counters.refusedDraining++;
      return Promise.reject(new BusDrainingError(source, event));
    }
    return undefined;
  }

  /** Builds and validates an envelope; throws the typed error of the first problem. */
  envelope(source: string, event: string, data?: unknown, options?: PostOptions): Envelope {
    return this.factory.envelope(source, event, data, options);
  }

  /**
   * Runs this process's handlers with the very object: no codec, no transport,
   * no unique. Throws {@link QueueFullError} when `maxPending` events already
   * wait for dispatch, rather than dropping the event; `TransportClosedError`
   * after close, {@link BusDrainingError} once the shutdown drain began.
   *
   * With `{ wait: true }` it returns a promise of every handler's outcome,
   * in registration order, once all settled (the errors above reject it);
   * add `rejectOnError: true` to reject with an `AggregateError` of the
   * handlers' errors instead when any failed.
   */
  postLocal(source: string, event: string, data?: unknown): void;
  postLocal(
    source: string,
    event: string,
    data: unknown,
    options: LocalPostOptions & { wait: true },
  ): Promise<HandlerOutcome[]>;
  postLocal(
    source: string,
    event: string,
    data?: unknown,
    options?: LocalPostOptions,
  ): void | Promise<HandlerOutcome[]>;
  postLocal(
    source: string,
    event: string,
    data?: unknown,
    options?: LocalPostOptions,
  ): void | Promise<HandlerOutcome[]> {
    // The common post (no options, one exact handler, a free runner slot)
    // in this one function, every other case out of line. A cold app runs
    // it 10,000 times before V8 optimizes it; each small function on the
    // way would be compiled on its own and again inside this one, and each
    // test it makes on every call is compiled too (issue 16: a TurboFan job
    // costs about 1 M instructions, and grows with every branch taken).
    if (options !== undefined) return this.postLocalWith(source, event, data, options);
    // HandlerRegistry.match's first case, inline. Its exact index holds only
    // names that can be posted, so a hit proves both names valid: they are
    // checked (and the typed error thrown, names first) out of line.
    const registry = this.registry;
    const found = registry.wild === 0 ? registry.exact.get(source)?.get(event) : undefined;
    const state = this.machine.state;
    if (
      found === undefined ||
      // Tested only once the bus is not connected: a test never made before
      // V8 optimizes this function is compiled as an exit, not as code.
      (state !== 'connected' && (state === 'draining' || state === 'closing' || state === 'closed'))
    ) {
      // No exact handler (none, or wildcard patterns registered), a bad
      // name, or a bus that refuses: the general path (which matches every
      // index, or throws the typed error).
      this.enqueueLocal(source, event, data, undefined);
      return;
    }
    // EnvelopeFactory.local's event, built here (same fields, same order).
    const factory = this.factory;
    const ids = factory.ids;
    if (ids.next === ROPE_BLOCK) ids.renewPrefix();
    const id = ids.prefix + ID_DIGITS[ids.next++];
    let occurredAt: string;
    if (factory.readingUses > 0) {
      factory.readingUses--;
      occurredAt = factory.lastIso;
    } else {
      occurredAt = factory.isoNow();
    }
    const local: HeraldEvent = {
      id,
      source,
      event,
      data,
      origin: this.origin,
      occurredAt,
      headers: NO_HEADERS,
      local: true,
      attempt: 1,
    };
    // Dispatcher.runLocal's short path, inline (the same steps; see there):
    // V8 otherwise compiles runLocal alone and again inside this function.
    const dispatcher = this.dispatcher;
    const runner = dispatcher.runner;
    if (
      !dispatcher.plain ||
      runner.pumping ||
      runner.holding ||
      runner.active >= runner.concurrency ||
      runner.waiting !== 0
    ) {
      dispatcher.runLocal(local);
      return;
    }
    runner.pumping = true;
    runner.active++;
    const counters = this.counters;
    counters.postedLocal++;
    if (Array.isArray(found)) {
      dispatcher.runClaimed(local, found as readonly HandlerEntry[]);
      return;
    }
    const entry = found as HandlerEntry;
    let result: unknown;
    try {
      result = entry.handler.call(entry.receiver, data, local);
    } catch (error) {
      dispatcher.failedAlone(local, entry, error);
      return;
    }
    if (result !== undefined && isThenable(result)) {
      dispatcher.awaitAlone(local, entry, result);
      return;
    }
    counters.handled++;
    // TaskRunner.release(true), inline: the slot back, then what waits in
    // the runner runs, or the turn ends with its onTurn (the bus's settled
    // callback: the idle check).
    runner.active--;
    runner.pumping = false;
    if (runner.waiting !== 0 || runner.idleWaiters.length !== 0) runner.released();
    else this.idle.notify();
  }

  /** {@link postLocal} with options: headers, or awaited. */
  private postLocalWith(
    source: string,
    event: string,
    data: unknown,
    options: LocalPostOptions,
  ): void | Promise<HandlerOutcome[]> {
    if (options.wait !== true) {
      this.enqueueLocal(source, event, data, options.headers);
      return;
    }
    return new Promise<HandlerOutcome[]>((resolve, reject) => {
      this.enqueueLocal(source, event, data, options.headers, outcomes => {
        const failed = outcomes.filter(o => o.status === 'rejected');
        if (!options.rejectOnError || failed.length === 0) return resolve(outcomes);
        reject(
          new AggregateError(
            failed.map(o => o.reason),
            `${failed.length} handler(s) failed on ${source}/${event}: ${failed.map(o => o.handler).join(', ')}`,
          ),
        );
      });
    });
  }

  private enqueueLocal(
    source: string,
    event: string,
    data: unknown,
    headers: Readonly<Record<string, string>> | undefined,
    report?: (outcomes: HandlerOutcome[]) => void,
  ): void {
    const local = this.factory.local(source, event, data, headers);
    const state = this.machine.state;
    if (state === 'closing' || state === 'closed') {
      throw new TransportClosedError('event bus is closed');
    }
    if (state === 'draining') {
      this.counters.refusedDraining++;
      throw new BusDrainingError(source, event);
    }
    if (report === undefined) {
      this.dispatcher.runLocal(local);
      return;
    }
    this.dispatcher.assertRoom();
    this.counters.postedLocal++;
    this.dispatcher.enqueue({ local, report });
  }

  /** The transport hands an envelope over. */
  private receive(delivery: Delivery): void {
    this.counters.delivered++;
    this.instrumentation?.delivered(delivery.envelope);
    this.loopback.arrived(delivery);
    if (this.machine.state === 'closed') {
      this.dispatcher.drop(delivery, new TransportClosedError('event bus is closed'));
      return;
    }
    this.dispatcher.deliver(delivery);
  }

  /** Shutdown step one: the transport stops taking new deliveries in. */
  async stopIntake(): Promise<void> {
    await this.transport.stopIntake?.();
  }

  /**
   * Waits until nothing is queued, running or being published (and, on
   * transports that leave the process, until this process's own posts came
   * back and were handled), for at most `timeoutMs`. Never waits for ever:
   * false when the time ran out (e.g. an at-most-once transport lost the
   * copy of a post meant for this process). @returns true when idle in time.
   */
  drain(timeoutMs: number): Promise<boolean> {
    return this.idle.wait(timeoutMs);
  }

  /**
   * Resolves once every event this process posted so far is settled —
   * handled here, refused, or counted lost — and nothing is queued or
   * running. Rejects with {@link IdleTimeoutError} (saying what is still
   * busy) after `timeoutMs` (default 5000), so it never waits for ever.
   */
  async whenIdle(options: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 5000;
    if (!(await this.idle.wait(timeoutMs))) {
      const ownPosts = this.loopback.size;
      throw new IdleTimeoutError(
        timeoutMs,
        `${this.busyReport()}; ${this.outbox.length} post(s) waiting for the transport` +
          (ownPosts > 0 ? `; ${ownPosts} own post(s) not back from the transport yet` : ''),
      );
    }
  }

  /**
   * Shutdown step zero: from now on, posts that this process would have to
   * handle are refused ({@link BusDrainingError}), so the drain ends; what
   * was accepted before still runs. Idempotent; a no-op once closing.
   */
  beginDrain(): void {
    if (this.machine.is('draining', 'closing', 'closed')) return;
    this.machine.setState('draining');
    this.updateReady();
  }

  /** `Class.method` of each handler call still running (`×n` when several). */
  runningHandlers(): string[] {
    return this.dispatcher.runningHandlers();
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
    let was = this.machine.state;
    // The drain began before (EventsModule): what state did it start from?
    if (was === 'draining') was = this.connecting ? 'connecting' : 'idle';
    this.machine.setState('closing');
    this.updateReady();
    const started = performance.now();
    // A connect() still retrying decides whether the waiting posts go out
    // (on failure it rejected them with its cause already), but only within
    // the timeout: a broker or server that never comes up must not hold
    // close() for ever. The transport's close() below ends that connect().
    const connected =
      was === 'connected' ||
      ((was === 'connecting' || was === 'reconnecting') && (await this.connectedWithin(timeoutMs)));
    if (connected) {
      await this.stopIntake().catch(error =>
        this.logger.error(
          logLine(
            'bus',
            'bus-stop-intake-failed',
            `transport ${this.transport.name} failed to stop intake: ${describeError(error)}`,
            { transport: this.transport.name },
          ),
        ),
      );
    }
    if (!(await this.drain(Math.max(0, timeoutMs - (performance.now() - started))))) {
      this.logger.warn(
        logLine(
          'bus',
          'bus-shutdown-timeout',
          `shutdown timeout of ${timeoutMs} ms reached with ${this.busyReport()}`,
          { timeoutMs, transport: this.transport.name },
        ),
      );
    }
    this.loopback.clear();
    this.dispatcher.dropAll(new TransportClosedError('event bus closed before dispatch'));
    this.outbox.rejectAll(new TransportClosedError('event bus is closed'));
    this.registry.clear();
    try {
      await callTransport(() => this.transport.close());
    } finally {
      this.instrumentation?.close();
      this.machine.setState('closed');
      this.machine.complete();
      this.ready$.complete();
    }
  }

  /**
   * Shutdown's wait for a pending connect(): true once it resolves, false
   * when it fails or `timeoutMs` passes first (said in a warning with the
   * posts still waiting for it, which then reject with TransportClosedError).
   */
  private connectedWithin(timeoutMs: number): Promise<boolean> {
    return new Promise<boolean>(resolve => {
      const timer = setTimeout(() => {
        this.logger.warn(
          logLine(
            'bus',
            'bus-shutdown-connect-timeout',
            `shutdown timeout of ${timeoutMs} ms reached while transport ${this.transport.name} ` +
              `was still connecting; ${this.outbox.length} waiting post(s) are rejected`,
            { timeoutMs, transport: this.transport.name, rejected: this.outbox.length },
          ),
        );
        this.connectAbandoned = true;
        // They can never go now: rejected at once, so the drain that follows
        // waits only for what runs here (postLocal handlers).
        // Counted as failed posts, as a connect that gave up counts them.
        this.counters.publishFailed += this.outbox.rejectAll(
          new TransportClosedError('event bus closed before the transport connected'),
        ).length;
        resolve(false);
      }, timeoutMs);
      this.connecting!.then(
        () => resolve(true),
        () => resolve(false),
      ).finally(() => clearTimeout(timer));
    });
  }

  /** What is still going on, for shutdown warnings: counts, and each running handler by name. */
  busyReport(): string {
    const { inFlight, queued, running } = this.dispatcher.gauges();
    return (
      `${inFlight} event(s) running and ${queued} queued` +
      (running > 0 ? `; handlers still running: ${this.runningHandlers().join(', ')}` : '')
    );
  }

  /** The bus's counters and gauges, with the transport's under `transport`. */
  stats(): EventBusStats {
    return {
      ...this.counters,
      ...this.dispatcher.gauges(),
      handlers: this.registry.size,
      transport: this.transport.stats(),
    };
  }
}

import { Inject, Injectable, Optional } from '@nestjs/common';
import type { Observable } from 'rxjs';
import type { EventHandler } from './interfaces/envelope.interface.js';
import type { EventBus, EventBusStats, EventBusStatus } from './bus/event-bus.js';
import type {
  HandlerOutcome,
  LocalPostOptions,
  PostOptions,
  PostReceipt,
} from './bus/event-bus.options.js';
import { splitHandlerArgs, type HandlerOptions } from './bus/event-bus.registry.js';
import type {
  CatalogHandler,
  DataArgs,
  DataOf,
  EventOf,
  EventPattern,
  IsUntyped,
  JsonCatalog,
  PatternData,
  SourceOf,
  SourcePattern,
  UntypedEvents,
} from './interfaces/event-catalog.interface.js';
import { InvalidEventError } from './common/errors.js';
import { EVENT_BUS, EVENTS_MODULE_OPTIONS } from './events.constants.js';
import type { EventsModuleOptions } from './events-module-options.interface.js';
import { resolvePatternArgs, splitPostName } from './event-names.js';
import { REQUEST_CONTEXT_HEADER, RequestContexts } from './explorer/request-contexts.js';

/**
 * What the request of a post is for: with `inheritRequestContextId`,
 * request-scoped handlers of this process run in its DI context.
 * @publicApi
 */
export interface RequestPostOption {
  /**
   * The request this post is made for (`@Req()`, or `@Inject(REQUEST)`):
   * with `EventsModule.forRoot({ inheritRequestContextId: true })`, this
   * process's request-scoped handlers of the event run in its DI context
   * (other processes' in their own). Refused without that option.
   */
  request?: object;
}

/** Options of `EventPublisher.post`. @publicApi */
export type PublishOptions = PostOptions & RequestPostOption;
/** Options of `EventPublisher.postLocal`. @publicApi */
export type LocalPublishOptions = LocalPostOptions & RequestPostOption;

/**
 * The app's door to its bus: inject it anywhere `EventsModule` is visible.
 * Every app instance has its own bus, so two apps in one process stay apart.
 * The bus's life follows the app's (see `EventsModule`); after `app.close()`
 * `post` rejects and `postLocal` throws `TransportClosedError`.
 * @publicApi
 */
@Injectable()
export class EventPublisher<C extends JsonCatalog<C> = UntypedEvents> {
  private readonly delimiter?: string;
  private readonly inheritRequestContextId: boolean;

  constructor(
    @Inject(EVENT_BUS) private readonly bus: EventBus,
    @Optional() @Inject(EVENTS_MODULE_OPTIONS) options?: EventsModuleOptions,
    @Optional() private readonly requests?: RequestContexts,
  ) {
    this.delimiter = options?.delimiter;
    this.inheritRequestContextId = options?.inheritRequestContextId === true;
    this.plain = this.delimiter === undefined;
  }

  /** No delimiter: `post`/`postLocal` go straight to the bus (which validates, with `schemas`). */
  private readonly plain: boolean;

  /**
   * Posts to every process the transport reaches, this one included (its own
   * handlers receive the event through the same path as everyone's).
   * Resolves to `{ id }` once the transport accepted the event; rejects with
   * a typed error, before anything is sent, for bad names, data, key or
   * headers. Posts made before the app is ready wait in a bounded buffer.
   *
   * With `EventsModule.forRoot({ delimiter: '.' })` also
   * `post('orders.created', data?, options?)`.
   */
  post<S extends SourceOf<C>, E extends EventOf<C, S>>(
    source: S,
    event: E,
    ...rest: DataArgs<DataOf<C, S, E>, PublishOptions>
  ): Promise<PostReceipt>;
  post(
    name: IsUntyped<C> extends true ? string : never,
    data?: unknown,
    options?: PublishOptions,
  ): Promise<PostReceipt>;
  post(
    source: string,
    event?: unknown,
    data?: unknown,
    options?: PublishOptions,
  ): Promise<PostReceipt> {
    if (typeof event !== 'string' || !this.plain || options?.request) {
      try {
        const args = this.named(source, event, data, options);
        return this.bus.post(args.source, args.event, args.data, this.withRequest(args.options));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.bus.post(source, event, data, options);
  }

  /**
   * Runs this process's handlers with the very object: no codec, no
   * transport, no `unique`. Throws `QueueFullError` when `maxPending` events
   * wait, `BusDrainingError` once the shutdown drain began.
   *
   * With `{ wait: true }` (like `emitAsync`) it returns a promise of each
   * handler's outcome (`{ handler, status, value | reason }`, in registration
   * order) once all settled; with `rejectOnError: true` it rejects with an
   * `AggregateError` of the handlers' errors when any failed.
   */
  postLocal<S extends SourceOf<C>, E extends EventOf<C, S>>(
    source: S,
    event: E,
    ...rest: DataArgs<DataOf<C, S, E>, LocalPublishOptions & { wait?: false }>
  ): void;
  postLocal<S extends SourceOf<C>, E extends EventOf<C, S>>(
    source: S,
    event: E,
    data: DataOf<C, S, E>,
    options: LocalPublishOptions & { wait: true },
  ): Promise<HandlerOutcome[]>;
  postLocal<S extends SourceOf<C>, E extends EventOf<C, S>>(
    source: S,
    event: E,
    ...rest: DataArgs<DataOf<C, S, E>, LocalPublishOptions>
  ): void | Promise<HandlerOutcome[]>;
  /** With `EventsModule.forRoot({ delimiter: '.' })`: `postLocal('orders.created', data?, options?)` (untyped publishers). */
  postLocal(
    name: IsUntyped<C> extends true ? string : never,
    data: unknown,
    options: LocalPublishOptions & { wait: true },
  ): Promise<HandlerOutcome[]>;
  postLocal(
    name: IsUntyped<C> extends true ? string : never,
    data?: unknown,
    options?: LocalPublishOptions,
  ): void | Promise<HandlerOutcome[]>;
  postLocal(
    source: string,
    event?: unknown,
    data?: unknown,
    options?: LocalPublishOptions,
  ): void | Promise<HandlerOutcome[]> {
    if (typeof event !== 'string' || !this.plain || options?.request) {
      const args = this.named(source, event, data, options);
      return this.bus.postLocal(args.source, args.event, args.data, this.withRequest(args.options));
    }
    return this.bus.postLocal(source, event, data, options);
  }

  /**
   * `(source, event, data, options)` from either form: with a delimiter, a
   * first argument containing it is `'source.event'` and the rest shift.
   */
  private named<O>(
    first: string,
    second: unknown,
    third: unknown,
    fourth: O | undefined,
  ): { source: string; event: string; data: unknown; options: O | undefined } {
    const { delimiter } = this;
    if (delimiter !== undefined && typeof first === 'string' && first.includes(delimiter)) {
      const [source, event] = splitPostName(first, delimiter);
      return { source, event, data: second, options: third as O | undefined };
    }
    if (typeof second !== 'string' && typeof first === 'string' && first.includes('.')) {
      throw new InvalidEventError(
        `event must be a non-empty string: to post event-emitter-style names such as '${first}', set EventsModule.forRoot({ delimiter: '.' }), or post('${first.split('.')[0]}', '${first.split('.').slice(1).join('.')}', data)`,
      );
    }
    return { source: first, event: second as string, data: third, options: fourth };
  }

  /** The options with `request` turned into the header that carries it to this process's scoped handlers. */
  private withRequest<O extends RequestPostOption & { headers?: Readonly<Record<string, string>> }>(
    options: O | undefined,
  ): Omit<O, 'request'> | undefined {
    if (options?.request === undefined) return options;
    const { request, ...rest } = options;
    if (!this.inheritRequestContextId || !this.requests) {
      throw new InvalidEventError(
        'request: set EventsModule.forRoot({ inheritRequestContextId: true }) to run request-scoped handlers in the DI context of the request that posted',
      );
    }
    if (request === null || typeof request !== 'object') {
      throw new InvalidEventError(
        'request must be the request object (@Req() or @Inject(REQUEST))',
      );
    }
    return {
      ...rest,
      headers: { ...rest.headers, [REQUEST_CONTEXT_HEADER]: this.requests.attach(request) },
    };
  }

  /**
   * Resolves once every event this process posted so far is settled
   * (handled here, refused, or counted lost) and nothing is queued or
   * running; rejects with `IdleTimeoutError` after `timeoutMs` (default
   * 5000), saying what is still busy. For tests and scripts: never waits for
   * ever, even on an at-most-once transport.
   */
  whenIdle(options?: { timeoutMs?: number }): Promise<void> {
    return this.bus.whenIdle(options);
  }

  /**
   * Adds a handler by hand, like `@OnEvent(source?, ...events, options?)`
   * (options: `{ prepend, timeoutMs }`; with a delimiter, dotted names).
   * Throws `InvalidOptionsError` for a pattern that can never match.
   * @returns a disposer that removes exactly these patterns.
   */
  register(handler: CatalogHandler<PatternData<C, undefined, []>>): () => boolean;
  register<const S extends SourcePattern<C>, const E extends readonly EventPattern<C, S>[]>(
    handler: CatalogHandler<PatternData<C, S, E>>,
    source: S,
    ...events: E
  ): () => boolean;
  register<const S extends SourcePattern<C>, const E extends readonly EventPattern<C, S>[]>(
    handler: CatalogHandler<PatternData<C, S, E>>,
    source: S,
    ...eventsAndOptions: [...E, HandlerOptions]
  ): () => boolean;
  register(
    typedHandler: (...args: never[]) => unknown,
    source?: string,
    ...events: (string | HandlerOptions)[]
  ): () => boolean {
    const handler = typedHandler as EventHandler;
    const split = splitHandlerArgs(events);
    const where = `register(${handler?.name || 'handler'})`;
    const patterns = resolvePatternArgs(where, source, split.events, this.delimiter);
    const disposers = patterns.map(pattern =>
      split.options === undefined
        ? this.bus.register(handler, pattern.source, ...pattern.events)
        : this.bus.register(
            handler,
            pattern.source,
            ...pattern.events,
            split.options as HandlerOptions,
          ),
    );
    if (disposers.length === 1) return disposers[0];
    return () => disposers.map(dispose => dispose()).some(Boolean);
  }

  /** Removes a handler's patterns (all of them with no source). @returns true if something was removed. */
  unregister(handler: EventHandler, source?: string, ...events: string[]): boolean {
    if (source === undefined || this.delimiter === undefined) {
      return this.bus.unregister(handler, source, ...events);
    }
    return resolvePatternArgs('unregister', source, events, this.delimiter)
      .map(pattern =>
        pattern.source === undefined
          ? this.bus.unregister(handler, '*', '*')
          : this.bus.unregister(handler, pattern.source, ...pattern.events),
      )
      .some(Boolean);
  }

  /**
   * The bus's status: `connecting`, `reconnecting` with the cause while the
   * transport's `connect()` retries, then the transport's own status; `bus`
   * says the bus's state (`failed` once the transport gave up).
   */
  get status$(): Observable<EventBusStatus> {
    return this.bus.status$;
  }

  /**
   * The bus's counters and gauges, with the transport's under `transport`;
   * `invalid`: events refused by their schema (`schemas`) before any handler ran.
   */
  stats(): EventBusStats {
    return this.bus.stats();
  }

  /**
   * Resolves once the transport is connected and dispatch has started (after
   * every module's `onApplicationBootstrap`); rejects with
   * `TransportClosedError` if the app closes first. Do not await it inside a
   * lifecycle hook: it would wait for the very bootstrap it is part of.
   */
  waitUntilReady(): Promise<void> {
    return this.bus.waitUntilReady();
  }
}

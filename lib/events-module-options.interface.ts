import type { EventBusOptions } from './bus/event-bus.options.js';
import type { TransportSelection } from './transports/create-transport.js';

/**
 * Options of {@link EventsModule}: which transport (and its options), plus
 * the bus's options. One bus is built from them per app instance.
 * @publicApi
 */
export interface EventsModuleOptions
  extends TransportSelection, Omit<EventBusOptions, 'transport' | 'logger'> {
  /**
   * How long shutdown waits for queued and running handlers, once at
   * `onModuleDestroy` (before any other provider releases its resources) and
   * once more for the final flush at `onApplicationShutdown`.
   * @default 10000
   */
  shutdownTimeoutMs?: number;
  /**
   * Where the bus logs handler failures, drops and transport trouble (never
   * event data).
   * @default `new Logger('Herald')` from `@nestjs/common`
   */
  logger?: EventBusOptions['logger'];
  /**
   * event-emitter-style names: with `'.'`, `'orders.created'` means source
   * `orders`, event `created` in `@OnEvent`, `register`, `post` and
   * `postLocal`; `'orders.*'` every event of `orders`, `'*.created'`
   * `created` of any source. Split at the first delimiter.
   * @default none: names are `(source, event)` pairs
   */
  delimiter?: string;
  /**
   * As `@nestjs/event-emitter`'s option: a handler on a request-scoped
   * provider runs in the DI context of the request that posted, for events
   * posted with `{ request }` (`post` and `postLocal`) or, with `postLocal`,
   * whose data carries Nest's context id (the request itself, as with
   * event-emitter). Otherwise each event gets its own context.
   * @default false
   */
  inheritRequestContextId?: boolean;
}

/** Extras of `EventsModule.forRoot` / `forRootAsync`. @publicApi */
export interface EventsModuleExtras {
  /** Registers the module globally, so `EventPublisher` is injectable everywhere. @default true */
  isGlobal?: boolean;
}

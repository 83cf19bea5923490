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
}

/** Extras of `EventsModule.forRoot` / `forRootAsync`. @publicApi */
export interface EventsModuleExtras {
  /** Registers the module globally, so `EventPublisher` is injectable everywhere. @default true */
  isGlobal?: boolean;
}

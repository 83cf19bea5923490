import {
  ConfigurableModuleBuilder,
  type ConfigurableModuleAsyncOptions,
  Inject,
  Logger,
  Module,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type OnModuleDestroy,
  type OnModuleInit,
  type Provider,
} from '@nestjs/common';
import { DiscoveryModule, ModulesContainer } from '@nestjs/core';
import { InvalidOptionsError } from './common/errors.js';
import { EventBus } from './bus/event-bus.js';
import type { HeraldLogger } from './common/logger.js';
import { EventPublisher } from './event-publisher.js';
import { EVENTS_MODULE_OPTIONS, EVENT_BUS } from './events.constants.js';
import { EventsExplorer } from './explorer/events.explorer.js';
import type { EventsModuleExtras, EventsModuleOptions } from './events-module-options.interface.js';
import { createTransport } from './transports/create-transport.js';

const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

const { ConfigurableModuleClass } = new ConfigurableModuleBuilder<EventsModuleOptions>({
  optionsInjectionToken: EVENTS_MODULE_OPTIONS,
})
  .setClassMethodName('forRoot')
  .setExtras<EventsModuleExtras>({ isGlobal: true }, (definition, extras) => ({
    ...definition,
    global: extras.isGlobal,
  }))
  .build();

/** What `EventsModule.forRoot` takes. @publicApi */
export type EventsModuleForRootOptions = EventsModuleOptions & EventsModuleExtras;
/** What `EventsModule.forRootAsync` takes (`imports`, `inject`, `useFactory` / `useClass` / `useExisting`). @publicApi */
export type EventsModuleAsyncOptions = ConfigurableModuleAsyncOptions<EventsModuleOptions> &
  EventsModuleExtras;

function shutdownTimeoutOf(options: EventsModuleOptions): number {
  const timeout = options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
  if (typeof timeout !== 'number' || !(timeout > 0) || !Number.isFinite(timeout)) {
    throw new InvalidOptionsError('shutdownTimeoutMs must be a finite number > 0');
  }
  return timeout;
}

function loggerOf(options: EventsModuleOptions): HeraldLogger {
  return options.logger ?? new Logger('Herald');
}

/** Builds the app's own bus (one per app instance, never shared). */
async function createBus(options: EventsModuleOptions): Promise<EventBus> {
  if (options === null || typeof options !== 'object') {
    throw new InvalidOptionsError('EventsModule options must be an object');
  }
  shutdownTimeoutOf(options);
  const transport = await createTransport(options);
  try {
    return new EventBus({
      transport,
      codec: options.codec,
      unique: options.unique,
      concurrency: options.concurrency,
      handlerTimeoutMs: options.handlerTimeoutMs,
      onHandlerError: options.onHandlerError,
      maxPending: options.maxPending,
      clock: options.clock,
      logger: loggerOf(options),
    });
  } catch (error) {
    await transport.close();
    if (error instanceof RangeError) throw new InvalidOptionsError(error.message, { cause: error });
    throw error;
  }
}

const busProvider: Provider = {
  provide: EVENT_BUS,
  inject: [EVENTS_MODULE_OPTIONS],
  useFactory: createBus,
};

/**
 * Events for a Nest app: `EventsModule.forRoot(options)` or
 * `forRootAsync({ imports, inject, useFactory })`; global unless
 * `isGlobal: false`. Provides `EventPublisher` and runs `@OnEvent` methods
 * of providers and controllers.
 *
 * Life, in Nest 12's hook order (every module's `onModuleDestroy` runs
 * before any `beforeApplicationShutdown`, importers before imports, global
 * modules last), so this module puts itself outermost: it bootstraps after
 * every other module and is destroyed before every other module.
 * - `onModuleInit`: connect the transport (posts made earlier, even from
 *   constructors, wait for it).
 * - `onApplicationBootstrap`: register the `@OnEvent` methods, start
 *   dispatch; events posted or received earlier run now, in order.
 * - `onModuleDestroy`: stop intake and wait (up to `shutdownTimeoutMs`) for
 *   queued and running handlers, before any other provider's
 *   `onModuleDestroy` releases what they use; then unregister them.
 * - `onApplicationShutdown`: flush what was posted and close the transport;
 *   later posts reject with `TransportClosedError`.
 * @publicApi
 */
@Module({
  imports: [DiscoveryModule],
  providers: [busProvider, EventPublisher, EventsExplorer],
  exports: [EventPublisher, EVENT_BUS, EVENTS_MODULE_OPTIONS],
})
export class EventsModule
  extends ConfigurableModuleClass
  implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy, OnApplicationShutdown
{
  private readonly shutdownTimeoutMs: number;
  private readonly logger: HeraldLogger;
  private stopped?: Promise<boolean>;

  constructor(
    @Inject(EVENT_BUS) private readonly bus: EventBus,
    @Inject(EVENTS_MODULE_OPTIONS) options: EventsModuleOptions,
    private readonly explorer: EventsExplorer,
    modules: ModulesContainer,
  ) {
    super();
    this.shutdownTimeoutMs = shutdownTimeoutOf(options);
    this.logger = options.logger ?? new Logger('Herald');
    // Nest orders hooks by module distance from the root (descending on the
    // way up, ascending on the way down), and reads it only once hooks first
    // run, after every instance exists. Distance 0, nearer than the root
    // (1), makes this module the first destroyed and the last bootstrapped.
    let buses = 0;
    for (const moduleRef of modules.values()) {
      if (moduleRef.providers.has(EVENT_BUS)) buses++;
      if (moduleRef.providers.get(EVENT_BUS)?.instance === bus) moduleRef.distance = 0;
    }
    // Two of them would each register every @OnEvent method on its own bus,
    // so every event would run its handlers twice.
    if (buses > 1) {
      throw new InvalidOptionsError(
        'EventsModule is imported more than once in this app (two forRoot/forRootAsync calls): import it once, in the root module; it is global by default',
      );
    }
  }

  async onModuleInit(): Promise<void> {
    await this.bus.connect();
  }

  onApplicationBootstrap(): void {
    this.explorer.registerAll();
    this.bus.start();
  }

  async onModuleDestroy(): Promise<void> {
    await this.stop();
  }

  async onApplicationShutdown(): Promise<void> {
    const drained = await this.stop();
    // The shutdown budget was spent waiting already: flush what is ready, drop the rest.
    await this.bus.close({ timeoutMs: drained ? this.shutdownTimeoutMs : 1 });
  }

  /** Stops intake and drains once; @returns whether everything finished in time. */
  private stop(): Promise<boolean> {
    this.stopped ??= (async () => {
      await this.bus.stopIntake().catch((error: unknown) => {
        this.logger.error(
          `failed to stop intake: ${error instanceof Error ? error.message : String(error)}`,
        );
      });
      const drained = await this.bus.drain(this.shutdownTimeoutMs);
      if (!drained) {
        const { inFlight, queued } = this.bus.stats();
        this.logger.warn(
          `shutdownTimeoutMs (${this.shutdownTimeoutMs} ms) reached with ${inFlight} event(s) running and ${queued} queued`,
        );
      }
      this.explorer.unregisterAll();
      return drained;
    })();
    return this.stopped;
  }
}

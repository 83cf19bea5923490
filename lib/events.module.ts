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
import { describeError } from './common/describe-error.js';
import { logLine } from './common/log-line.js';
import { StateMachine } from './common/state-machine.js';
import { EventPublisher } from './event-publisher.js';
import { EVENTS_MODULE_OPTIONS, EVENT_BUS } from './events.constants.js';
import { EventsExplorer } from './explorer/events.explorer.js';
import { HeraldLazyModuleLoader } from './explorer/herald-lazy-module.loader.js';
import { RequestContexts } from './explorer/request-contexts.js';
import type { EventsModuleExtras, EventsModuleOptions } from './events-module-options.interface.js';
import { createTransport } from './transports/create-transport.js';
import { resolveEventsModuleOptions } from './events-module.options.js';

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

/**
 * The module's life through Nest's hooks: `connecting` (onModuleInit),
 * `running` (handlers registered, dispatch started), `draining` (intake
 * stopped, waiting for handlers), `drained` (handlers unregistered),
 * `closed` (transport closed).
 */
type ModuleState = 'created' | 'connecting' | 'running' | 'draining' | 'drained' | 'closed';
const MODULE_TRANSITIONS = {
  created: ['connecting', 'draining'],
  connecting: ['running', 'draining'],
  running: ['draining'],
  draining: ['drained'],
  drained: ['closed'],
  closed: [],
} as const satisfies { readonly [K in ModuleState]: readonly ModuleState[] };

/**
 * Builds the app's own bus (one per app instance, never shared), after
 * checking every option, so a bad one builds no transport.
 */
async function createBus(options: EventsModuleOptions): Promise<EventBus> {
  let resolved: ReturnType<typeof resolveEventsModuleOptions>;
  try {
    resolved = resolveEventsModuleOptions(options);
  } catch (error) {
    // A transport object handed over is the app's to close, and the app never starts.
    const given: unknown = (options as { transport?: unknown } | null)?.transport;
    if (given !== null && typeof given === 'object' && 'close' in given) {
      await (given as { close(): Promise<void> }).close();
    }
    throw error;
  }
  const transport = await createTransport(resolved.options);
  try {
    return new EventBus({ ...resolved.bus, transport });
  } catch (error) {
    await transport.close();
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
  providers: [busProvider, EventPublisher, EventsExplorer, RequestContexts, HeraldLazyModuleLoader],
  exports: [EventPublisher, EVENT_BUS, EVENTS_MODULE_OPTIONS, HeraldLazyModuleLoader],
})
export class EventsModule
  extends ConfigurableModuleClass
  implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy, OnApplicationShutdown
{
  private readonly shutdownTimeoutMs: number;
  private readonly logger: HeraldLogger;
  private readonly machine: StateMachine<ModuleState>;
  /** The one drain (both shutdown hooks await it): whether it finished in time. */
  private stopped?: Promise<boolean>;

  constructor(
    @Inject(EVENT_BUS) private readonly bus: EventBus,
    @Inject(EVENTS_MODULE_OPTIONS) options: EventsModuleOptions,
    private readonly explorer: EventsExplorer,
    modules: ModulesContainer,
  ) {
    super();
    this.shutdownTimeoutMs = resolveEventsModuleOptions(options).shutdownTimeoutMs;
    this.logger = options.logger ?? new Logger('Herald');
    this.machine = new StateMachine('EventsModule', 'created', MODULE_TRANSITIONS, this.logger);
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
    this.machine.setState('connecting');
    await this.bus.connect();
  }

  onApplicationBootstrap(): void {
    this.explorer.registerAll();
    this.bus.start();
    this.machine.setState('running');
  }

  async onModuleDestroy(): Promise<void> {
    await this.stop();
  }

  async onApplicationShutdown(): Promise<void> {
    const drained = await this.stop();
    // The shutdown budget was spent waiting already: flush what is ready, drop the rest.
    await this.bus.close({ timeoutMs: drained ? this.shutdownTimeoutMs : 1 });
    this.machine.setState('closed');
  }

  /** Stops intake and drains once; @returns whether everything finished in time. */
  private stop(): Promise<boolean> {
    this.stopped ??= (async () => {
      this.machine.setState('draining');
      // New posts this process would handle are refused from here, so the
      // drain ends when what was accepted has run.
      this.bus.beginDrain();
      await this.bus.stopIntake().catch((error: unknown) => {
        this.logger.error(
          logLine(
            'bus',
            'module-stop-intake-failed',
            `failed to stop intake: ${describeError(error)}`,
          ),
        );
      });
      const drained = await this.bus.drain(this.shutdownTimeoutMs);
      if (!drained) {
        this.logger.warn(
          logLine(
            'bus',
            'module-shutdown-timeout',
            `shutdownTimeoutMs (${this.shutdownTimeoutMs} ms) reached with ${this.bus.busyReport()}`,
            { timeoutMs: this.shutdownTimeoutMs },
          ),
        );
      }
      this.explorer.unregisterAll();
      this.machine.setState('drained');
      return drained;
    })();
    return this.stopped;
  }
}

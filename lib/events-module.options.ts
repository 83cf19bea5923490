import { Logger } from '@nestjs/common';
import {
  booleanOption,
  invalidOption,
  optionsObject,
  positiveNumberOption,
} from './common/options.validation.js';
import {
  EVENT_BUS_OPTION_KEYS,
  resolveEventBusSettings,
  type ResolvedEventBusOptions,
} from './bus/event-bus.options.js';
import type { EventsModuleOptions } from './events-module-options.interface.js';

const SCOPE = 'EventsModule';

/**
 * The keys `EventsModule.forRoot`/`forRootAsync` accept: the transport
 * selection (`transport` and one options field per built-in transport), the
 * bus's options and the module's own. A transport added to
 * `TransportSelection` adds its options key here.
 */
export const EVENTS_MODULE_OPTION_KEYS: readonly string[] = [
  'transport',
  'ipc',
  'pg',
  'redis',
  ...EVENT_BUS_OPTION_KEYS.filter(key => key !== 'transport'),
  'shutdownTimeoutMs',
  'delimiter',
  'inheritRequestContextId',
];

/** {@link EventsModuleOptions} checked, with the module's own defaults applied. */
export interface ResolvedEventsModuleOptions {
  /** What was given, for the transport selection. */
  readonly options: EventsModuleOptions;
  /** The bus's options but its transport. */
  readonly bus: Omit<ResolvedEventBusOptions, 'transport'>;
  readonly shutdownTimeoutMs: number;
  readonly delimiter?: string;
  readonly inheritRequestContextId: boolean;
}

/**
 * Checks what `forRoot` was given, or what `forRootAsync`'s factory returned
 * (a `ConfigService` string such as `'4'` for `concurrency` is refused, not
 * coerced): throws `InvalidOptionsError` naming the option, the rule and the
 * value with its type. `@nestjs/event-emitter` options (`wildcard`,
 * `delimiter`, `maxListeners`...) are refused with a pointer to the README's
 * "Coming from @nestjs/event-emitter". Runs before any transport is built.
 */
export function resolveEventsModuleOptions(
  options: EventsModuleOptions | undefined,
): ResolvedEventsModuleOptions {
  const given = optionsObject<EventsModuleOptions>(
    SCOPE,
    options,
    EVENTS_MODULE_OPTION_KEYS as (keyof EventsModuleOptions & string)[],
  );
  return {
    options: given,
    // Nest's Logger by default, so the bus logs where the app does.
    bus: resolveEventBusSettings({ ...given, logger: given.logger ?? new Logger('Herald') }, SCOPE),
    shutdownTimeoutMs: positiveNumberOption(
      SCOPE,
      'shutdownTimeoutMs',
      given.shutdownTimeoutMs,
      10_000,
    ),
    delimiter: delimiterOption(given.delimiter),
    inheritRequestContextId: booleanOption(
      SCOPE,
      'inheritRequestContextId',
      given.inheritRequestContextId,
      false,
    ),
  };
}

function delimiterOption(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '' || value.includes('*')) {
    invalidOption(SCOPE, 'delimiter', "a non-empty string without '*' (e.g. '.')", value);
  }
  return value;
}

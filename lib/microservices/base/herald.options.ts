import type {
  ConsumerDeserializer,
  ConsumerSerializer,
  ProducerDeserializer,
  ProducerSerializer,
} from '@nestjs/microservices';
import { consoleLogger, type HeraldLogger } from '../../common/logger.js';
import {
  integerOption,
  invalidOption,
  nonNegativeNumberOption,
  objectOption,
  oneOfOption,
  positiveNumberOption,
} from '../../common/options.validation.js';
import { MICROSERVICE_DEFAULTS } from '../microservice.constants.js';
import type {
  HeraldClientOptions,
  HeraldServerOptions,
  HeraldStartup,
} from '../microservice.interface.js';

/** The keys of {@link HeraldServerOptions}, for the servers' unknown-key checks. */
export const HERALD_SERVER_OPTION_KEYS = [
  'startup',
  'connectTimeoutMs',
  'closeTimeoutMs',
  'serializer',
  'deserializer',
  'logger',
] as const satisfies readonly (keyof HeraldServerOptions)[];

/** The keys of {@link HeraldClientOptions}, for the clients' unknown-key checks. */
export const HERALD_CLIENT_OPTION_KEYS = [
  'requestTimeoutMs',
  'connectTimeoutMs',
  'serializer',
  'deserializer',
  'logger',
] as const satisfies readonly (keyof HeraldClientOptions)[];

/** {@link HeraldServerOptions} with every default applied. */
export interface ResolvedHeraldServerOptions {
  readonly startup: HeraldStartup;
  readonly connectTimeoutMs: number;
  readonly closeTimeoutMs: number;
  readonly serializer?: ConsumerSerializer;
  readonly deserializer?: ConsumerDeserializer;
  readonly logger: HeraldLogger;
}

/** {@link HeraldClientOptions} with every default applied. */
export interface ResolvedHeraldClientOptions {
  readonly requestTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly serializer?: ProducerSerializer;
  readonly deserializer?: ProducerDeserializer;
  readonly logger: HeraldLogger;
}

/**
 * The shared fields of a server's options (the subclass's resolver refuses
 * unknown keys, since only it knows them all). Throws `InvalidOptionsError`.
 */
export function resolveHeraldServerOptions(
  scope: string,
  options: HeraldServerOptions,
): ResolvedHeraldServerOptions {
  return {
    startup: oneOfOption(
      scope,
      'startup',
      options.startup,
      ['fail-fast', 'degraded'] as const,
      MICROSERVICE_DEFAULTS.startup,
    ),
    connectTimeoutMs: positiveNumberOption(
      scope,
      'connectTimeoutMs',
      options.connectTimeoutMs,
      MICROSERVICE_DEFAULTS.connectTimeoutMs,
    ),
    closeTimeoutMs: nonNegativeNumberOption(
      scope,
      'closeTimeoutMs',
      options.closeTimeoutMs,
      MICROSERVICE_DEFAULTS.closeTimeoutMs,
    ),
    serializer: methodObject<ConsumerSerializer>(
      scope,
      'serializer',
      options.serializer,
      'serialize',
    ),
    deserializer: methodObject<ConsumerDeserializer>(
      scope,
      'deserializer',
      options.deserializer,
      'deserialize',
    ),
    logger: loggerOption(scope, options.logger),
  };
}

/** The shared fields of a client's options. Throws `InvalidOptionsError`. */
export function resolveHeraldClientOptions(
  scope: string,
  options: HeraldClientOptions,
): ResolvedHeraldClientOptions {
  return {
    requestTimeoutMs: nonNegativeNumberOption(
      scope,
      'requestTimeoutMs',
      options.requestTimeoutMs,
      MICROSERVICE_DEFAULTS.requestTimeoutMs,
    ),
    connectTimeoutMs: positiveNumberOption(
      scope,
      'connectTimeoutMs',
      options.connectTimeoutMs,
      MICROSERVICE_DEFAULTS.connectTimeoutMs,
    ),
    serializer: methodObject<ProducerSerializer>(
      scope,
      'serializer',
      options.serializer,
      'serialize',
    ),
    deserializer: methodObject<ProducerDeserializer>(
      scope,
      'deserializer',
      options.deserializer,
      'deserialize',
    ),
    logger: loggerOption(scope, options.logger),
  };
}

/** An object with a `method` function (Nest's serializers), or undefined. */
export function methodObject<T>(
  scope: string,
  name: string,
  value: unknown,
  method: string,
): T | undefined {
  if (value === undefined) return undefined;
  objectOption(scope, name, value);
  if (typeof (value as Record<string, unknown>)[method] !== 'function') {
    invalidOption(scope, name, `an object with a ${method}() method`, value);
  }
  return value as T;
}

/** A logger with at least `log`, `warn` and `error`, or the console logger. */
export function loggerOption(scope: string, value: unknown): HeraldLogger {
  if (value === undefined) return consoleLogger;
  const methods = ['log', 'warn', 'error'];
  if (
    typeof value !== 'object' ||
    value === null ||
    methods.some(method => typeof (value as Record<string, unknown>)[method] !== 'function')
  ) {
    invalidOption(scope, 'logger', 'an object with log(), warn() and error() methods', value);
  }
  return value as HeraldLogger;
}

/** A positive integer (a count), or `fallback`. */
export function countOption(scope: string, name: string, value: unknown, fallback: number): number {
  return integerOption(scope, name, value, fallback, 1);
}

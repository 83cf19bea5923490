import { InvalidOptionsError } from './errors.js';

/**
 * The one options style (DESIGN.md "Options"): each public class resolves its
 * options in one `resolve*Options()` built from these checks, so every
 * refusal names the option, the rule and the value with its type, e.g.
 * `EventBus: concurrency must be an integer >= 1 (got '4', a string)`.
 */

/** `'4', a string` / `-1, a number` / `undefined` / `an object` ... */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return `${JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value)}, a string`;
    case 'number':
      return `${String(value)}, a number`;
    case 'bigint':
      return `${String(value)}n, a bigint`;
    case 'boolean':
      return `${String(value)}, a boolean`;
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
    default:
      if (Array.isArray(value)) return `an array of ${value.length}`;
      return `an instance of ${(value as object).constructor?.name ?? 'Object'}`;
  }
}

/** Throws `InvalidOptionsError`: `<scope>: <name> must be <rule> (got <value>)`. */
export function invalidOption(scope: string, name: string, rule: string, value: unknown): never {
  throw new InvalidOptionsError(`${scope}: ${name} must be ${rule} (got ${describeValue(value)})`);
}

/** An integer >= `min` (and <= `max`), or `fallback` when undefined. */
export function integerOption(
  scope: string,
  name: string,
  value: unknown,
  fallback: number,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const rule =
      max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
    invalidOption(scope, name, rule, value);
  }
  return value;
}

/** A finite number > 0, or `fallback` when undefined (the one positive-number check). */
export function positiveNumberOption<F extends number | undefined>(
  scope: string,
  name: string,
  value: unknown,
  fallback: F,
): number | F {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    invalidOption(scope, name, 'a finite number > 0', value);
  }
  return value;
}

/** A finite number >= 0, or `fallback` when undefined. */
export function nonNegativeNumberOption<F extends number | undefined>(
  scope: string,
  name: string,
  value: unknown,
  fallback: F,
): number | F {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    invalidOption(scope, name, 'a finite number >= 0', value);
  }
  return value;
}

/** A non-empty string, or `fallback` when undefined. */
export function stringOption<F extends string | undefined>(
  scope: string,
  name: string,
  value: unknown,
  fallback: F,
): string | F {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value.length === 0)
    invalidOption(scope, name, 'a non-empty string', value);
  return value;
}

/** A boolean, or `fallback` when undefined. */
export function booleanOption(
  scope: string,
  name: string,
  value: unknown,
  fallback: boolean,
): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') invalidOption(scope, name, 'a boolean', value);
  return value;
}

/** One of `allowed`, or `fallback` when undefined. */
export function oneOfOption<T extends string, F extends T | undefined>(
  scope: string,
  name: string,
  value: unknown,
  allowed: readonly T[],
  fallback: F,
): T | F {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    invalidOption(scope, name, `one of ${allowed.map(a => `'${a}'`).join(', ')}`, value);
  }
  return value as T;
}

/** A function, or `fallback` when undefined. */
export function functionOption<T extends (...args: never[]) => unknown, F extends T | undefined>(
  scope: string,
  name: string,
  value: unknown,
  fallback: F,
): T | F {
  if (value === undefined) return fallback;
  if (typeof value !== 'function') invalidOption(scope, name, 'a function', value);
  return value as T;
}

/** An object (not null, not an array), or undefined. */
export function objectOption(scope: string, name: string, value: unknown): object | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    invalidOption(scope, name, 'an object', value);
  }
  return value;
}

/**
 * Options `@nestjs/event-emitter` users pass out of habit, each with what
 * herald does instead (the README's "Coming from @nestjs/event-emitter").
 */
const EVENT_EMITTER_KEYS: Readonly<Record<string, string>> = {
  wildcard: 'patterns are always on: @OnEvent(source, event) with "*"',
  delimiter: 'events are (source, event) pairs',
  newListener: 'there is no newListener event',
  removeListener: 'there is no removeListener event',
  maxListeners: 'there is no listener limit',
  verboseMemoryLeak: 'there is no listener limit',
  ignoreErrors: 'handler errors are logged and counted (onHandlerError)',
  global: 'EventsModule is global already',
};

/**
 * Refuses keys of `options` not in `known`, naming them (and, for
 * `@nestjs/event-emitter` habits, where the README's migration notes are).
 * Keys whose value is `undefined` are tolerated (spread defaults).
 */
export function refuseUnknownKeys(scope: string, options: object, known: readonly string[]): void {
  const unknown = Object.keys(options).filter(
    key => !known.includes(key) && (options as Record<string, unknown>)[key] !== undefined,
  );
  if (unknown.length === 0) return;
  const hints = unknown
    .filter(key => key in EVENT_EMITTER_KEYS)
    .map(key => `${key}: ${EVENT_EMITTER_KEYS[key]}`);
  const pointer = hints.length
    ? ` (an @nestjs/event-emitter option? ${hints.join('; ')}; see the README, "Coming from @nestjs/event-emitter")`
    : '';
  throw new InvalidOptionsError(
    `${scope}: unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map(k => `'${k}'`).join(', ')}` +
      ` (known: ${known.join(', ')})${pointer}`,
  );
}

/** Checks `options` is an object (or undefined, giving `{}`) and refuses unknown keys. */
export function optionsObject<T extends object>(
  scope: string,
  options: T | undefined,
  known: readonly (keyof T & string)[],
): T {
  if (options === undefined) return {} as T;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    invalidOption(scope, 'options', 'an object', options);
  }
  refuseUnknownKeys(scope, options, known);
  return options;
}

import { PATTERN_MAX_DEPTH, PATTERN_MAX_KEYS } from '../microservice.constants.js';
import { InvalidPatternError } from '../microservice.errors.js';

/** A pattern of `@EventPattern` / `@MessagePattern`, as Nest hands it over. */
export type HeraldPattern = string | number | Readonly<Record<string, unknown>>;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * Checks that Nest turns `pattern` into a route this transport can carry and
 * that a client's pattern maps back to the same route: a non-empty string, a
 * finite number, or a plain object (at most 5 levels, 20 keys per level,
 * leaves strings, finite numbers or booleans). Anything else (arrays, null,
 * Dates, RegExps, undefined leaves) Nest would turn into a route no client
 * can produce, so the handler would silently never run. Returns the route.
 */
export function validatePattern(pattern: unknown, toRoute: (pattern: never) => string): string {
  if (typeof pattern === 'string') {
    if (pattern === '') throw new InvalidPatternError(pattern, 'an empty string');
    return pattern;
  }
  if (typeof pattern === 'number') {
    if (!Number.isFinite(pattern)) throw new InvalidPatternError(pattern, 'not a finite number');
    return String(pattern);
  }
  if (!isPlainObject(pattern)) {
    throw new InvalidPatternError(
      pattern,
      'a pattern must be a string, a number or a plain object',
    );
  }
  checkObject(pattern, pattern, 0);
  return toRoute(pattern as never);
}

function checkObject(root: unknown, value: Record<string, unknown>, depth: number): void {
  if (depth >= PATTERN_MAX_DEPTH)
    throw new InvalidPatternError(root, `nested deeper than ${PATTERN_MAX_DEPTH} levels`);
  const keys = Object.keys(value);
  if (keys.length === 0) throw new InvalidPatternError(root, 'an empty object');
  if (keys.length > PATTERN_MAX_KEYS)
    throw new InvalidPatternError(root, `more than ${PATTERN_MAX_KEYS} keys in one object`);
  for (const key of keys) {
    const leaf = value[key];
    if (typeof leaf === 'string' || typeof leaf === 'boolean') continue;
    if (typeof leaf === 'number' && Number.isFinite(leaf)) continue;
    if (isPlainObject(leaf)) {
      checkObject(root, leaf, depth + 1);
      continue;
    }
    throw new InvalidPatternError(
      root,
      `the value of ${JSON.stringify(key)} must be a string, a finite number, a boolean or a plain object`,
    );
  }
}

/**
 * The `herald.transport` of a server's or client's spans, from its class
 * name: `PgNotifyServer` -> `pg-notify`, `RedisStreamsClient` -> `redis-streams`.
 */
export function telemetrySystem(className: string): string {
  return className
    .replace(/(Server|Client)$/, '')
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .toLowerCase();
}

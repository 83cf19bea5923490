/**
 * Matching posted data without a test runner's `expect`, so the kit works
 * under Jest and Vitest alike: a predicate, or a pattern object matched as a
 * deep subset. Jest's and Vitest's asymmetric matchers
 * (`expect.any(Number)`, `expect.objectContaining(...)`) work anywhere in a
 * pattern: both expose `asymmetricMatch(value)`.
 */
import type { HeraldEvent } from '../interfaces/envelope.interface.js';

/** What `expectPosted` matches data with. @publicApi */
export type EventMatcher<T = unknown> = ((data: T, event: HeraldEvent<T>) => boolean) | DataPattern;

/**
 * A value matched as a deep subset: objects by their listed keys, arrays
 * element by element, anything else by `Object.is`; an asymmetric matcher
 * (an object with `asymmetricMatch`) by itself.
 * @publicApi
 */
export type DataPattern = object | string | number | boolean | bigint | null;

interface Asymmetric {
  asymmetricMatch(value: unknown): boolean;
}

function isAsymmetric(value: unknown): value is Asymmetric {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as Partial<Asymmetric>).asymmetricMatch === 'function'
  );
}

/** Whether `value` matches `pattern` (a deep subset; asymmetric matchers honoured). */
export function matchesPattern(value: unknown, pattern: unknown): boolean {
  if (isAsymmetric(pattern)) return pattern.asymmetricMatch(value);
  if (pattern === value) return true;
  if (pattern === null || typeof pattern !== 'object') return Object.is(pattern, value);
  if (value === null || typeof value !== 'object') return false;
  if (Array.isArray(pattern)) {
    return (
      Array.isArray(value) &&
      value.length === pattern.length &&
      pattern.every((item, i) => matchesPattern(value[i], item))
    );
  }
  if (pattern instanceof Date)
    return value instanceof Date && value.getTime() === pattern.getTime();
  return Object.keys(pattern).every(key =>
    matchesPattern(
      (value as Record<string, unknown>)[key],
      (pattern as Record<string, unknown>)[key],
    ),
  );
}

/** Whether an event matches `matcher` (none: any). */
export function matchesEvent(event: HeraldEvent, matcher: EventMatcher | undefined): boolean {
  if (matcher === undefined) return true;
  if (typeof matcher === 'function') {
    return (matcher as (data: unknown, event: HeraldEvent) => boolean)(event.data, event);
  }
  return matchesPattern(event.data, matcher);
}

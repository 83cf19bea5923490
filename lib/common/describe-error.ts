import { types } from 'node:util';

/**
 * An `Error` of any realm: errors made by Node's own modules inside a `vm`
 * context (as jest runs an app's tests) are not `instanceof` the context's
 * `Error`, and a log line must still read as a message, not as JSON.
 */
export function isError(value: unknown): value is Error {
  return value instanceof Error || types.isNativeError(value);
}

/**
 * One line naming an error for a log message: the message of an `Error`
 * (with its `code` when it has one, as Node's and the drivers' errors do),
 * the inner errors of an `AggregateError` that has no message of its own
 * (Node's connect to a host with several addresses fails that way), else the
 * value itself. The one way every layer turns a caught value into text, so a
 * log line reads the same whoever wrote it.
 */
export function describeError(error: unknown): string {
  if (isError(error)) {
    const code = (error as { code?: unknown }).code;
    const inner = (error as { errors?: unknown }).errors;
    const message =
      error.message ||
      (Array.isArray(inner) && inner.length > 0 ? inner.map(describeError).join('; ') : error.name);
    return typeof code === 'string' && !message.includes(code) ? `${message} (${code})` : message;
  }
  if (typeof error === 'string') return error;
  try {
    return JSON.stringify(error) ?? String(error);
  } catch {
    return String(error);
  }
}

/**
 * `error` itself when it is an `Error` of any realm, else an `Error` whose
 * message {@link describeError} writes: what a rejection or a settle callback
 * hands on, so a foreign realm's error keeps its `code` and stack.
 */
export function asError(error: unknown): Error {
  return isError(error) ? error : new Error(describeError(error));
}

/** The stack of an `Error` (of any realm), for `logger.error(message, stack)`. */
export function stackOf(error: unknown): string | undefined {
  return isError(error) ? error.stack : undefined;
}

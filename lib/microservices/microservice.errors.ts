import { HeraldError, InvalidOptionsError } from '../common/errors.js';

/**
 * A `@MessagePattern` / `@EventPattern` pattern this transport cannot carry
 * (thrown by `listen()`, and by a client for the pattern it is asked to use).
 * @publicApi
 */
export class InvalidPatternError extends InvalidOptionsError {
  constructor(
    readonly pattern: unknown,
    readonly reason: string,
  ) {
    super(`invalid pattern ${describePattern(pattern)}: ${reason}`);
  }
}

/** No reply came within the request's timeout. @publicApi */
export class RequestTimeoutError extends HeraldError {
  constructor(
    readonly pattern: string,
    readonly timeoutMs: number,
  ) {
    super(`no reply to ${pattern} within ${timeoutMs} ms`);
  }
}

/**
 * The responder's reply did not fit the transport (PostgreSQL NOTIFY takes at
 * most 7999 bytes): the caller gets this instead of waiting for its timeout.
 * @publicApi
 */
export class ReplyTooLargeError extends HeraldError {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`the reply of ${size} bytes exceeds the transport's limit of ${limit} bytes`);
  }
}

/**
 * `listen()` in fail-fast mode, or a client's `connect()` (and so every
 * `send`/`emit` waiting for it), could not connect within `connectTimeoutMs`.
 * `reason` (also in the message) is the last connection failure seen, when
 * there was one. @publicApi
 */
export class ConnectTimeoutError extends HeraldError {
  constructor(
    readonly what: string,
    readonly timeoutMs: number,
    readonly reason?: string,
  ) {
    super(
      `${what} could not connect within ${timeoutMs} ms${reason ? ` (last failure: ${reason})` : ''}`,
    );
  }
}

function describePattern(pattern: unknown): string {
  if (typeof pattern === 'string') return JSON.stringify(pattern);
  try {
    return JSON.stringify(pattern) ?? String(pattern);
  } catch {
    return String(pattern);
  }
}

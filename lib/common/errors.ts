/**
 * The typed errors of nest-herald. Each is thrown (or rejected with) at the
 * boundary where bad input or a closed resource is detected, before anything
 * is sent, so the caller can tell what went wrong and nothing else is lost.
 */

/** Base class of every error this package throws on purpose. @publicApi */
export class HeraldError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * A source or event name that cannot be posted: not a string, empty, or the
 * pattern wildcard `'*'`. @publicApi
 */
export class InvalidEventError extends HeraldError {}

/**
 * Data the codec refuses because JSON would silently change or drop it.
 * `path` names the offending value, e.g. `data.items[3].when`. @publicApi
 */
export class SerializationError extends HeraldError {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`cannot serialize ${path}: ${reason}`);
  }
}

/** An encoded payload larger than the transport accepts. @publicApi */
export class PayloadTooLargeError extends HeraldError {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`payload of ${size} bytes exceeds the limit of ${limit} bytes`);
  }
}

/** The bus or transport is closed (or closing): nothing more is accepted. @publicApi */
export class TransportClosedError extends HeraldError {
  constructor(message = 'transport is closed') {
    super(message);
  }
}

/** A bounded queue is full; the item was refused rather than silently dropped. @publicApi */
export class QueueFullError extends HeraldError {
  constructor(
    readonly queue: string,
    readonly limit: number,
  ) {
    super(`${queue} queue is full (limit ${limit})`);
  }
}

/** A handler did not settle within `handlerTimeoutMs`. @publicApi */
export class HandlerTimeoutError extends HeraldError {
  constructor(readonly timeoutMs: number) {
    super(`handler did not settle within ${timeoutMs} ms`);
  }
}

/** Options that fail validation at start-up. @publicApi */
export class InvalidOptionsError extends HeraldError {}

import { HeraldError, InvalidOptionsError } from '../../common/errors.js';

/** A stream name that is missing or empty (the original's `ErrEmptyStream`). @publicApi */
export class EmptyStreamError extends InvalidOptionsError {
  constructor() {
    super('stream name cannot be empty');
  }
}

/** A subscriber name that is missing or empty (the original's `ErrEmptyName`). @publicApi */
export class EmptySubscriberNameError extends InvalidOptionsError {
  constructor() {
    super('subscriber name cannot be empty');
  }
}

/**
 * An event dropped from the publisher's full buffer to make room for a newer
 * one (the oldest goes first). `publishAndWait` rejects with it. @publicApi
 */
export class EventDroppedError extends HeraldError {
  constructor(readonly bufferSize: number) {
    super(`publish buffer full (${bufferSize}): the oldest event was dropped`);
  }
}

/** An event still buffered when `close()` gave up draining. @publicApi */
export class EventNotWrittenError extends HeraldError {
  constructor(reason = 'publisher closed before the event was written') {
    super(reason);
  }
}

/**
 * A stream entry a decoder cannot read (a missing field, a bad value).
 * `field` names the culprit. @publicApi
 */
export class StreamEntryError extends HeraldError {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`stream entry field '${field}': ${reason}`);
  }
}

/**
 * An entry whose `operation` no handler knows. Subscribers skip it (and
 * count it) without retrying: throw it from a handler to do the same. @publicApi
 */
export class UnknownOperationError extends HeraldError {
  constructor(readonly operation: string) {
    super(`unknown operation '${operation}'`);
  }
}

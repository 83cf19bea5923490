import { HeraldError, TransportClosedError } from '../common/errors.js';

/**
 * The shutdown drain has begun: this post would not be handled in this
 * process, so it is refused (a resolved post is always handled). A
 * {@link TransportClosedError}, so code catching that keeps working.
 * @publicApi
 */
export class BusDrainingError extends TransportClosedError {
  constructor(
    readonly source: string,
    readonly event: string,
  ) {
    super(
      `event bus is draining for shutdown: ${source}/${event} refused (posts made once the drain began are not handled)`,
    );
  }
}

/**
 * `whenIdle({ timeoutMs })` ran out of time: something was still queued,
 * running, being published, or (on a transport that leaves the process) a
 * post of this process had not come back yet. The message says what.
 * @publicApi
 */
export class IdleTimeoutError extends HeraldError {
  constructor(
    readonly timeoutMs: number,
    readonly busy: string,
  ) {
    super(`not idle after ${timeoutMs} ms: ${busy}`);
  }
}

/** The original's defaults (Magistrala / Mainflux `pkg/events`), kept so a port behaves the same. */

/** Approximate stream retention: `XADD ... MAXLEN ~ 100000`. */
export const DEFAULT_MAX_LEN = 100_000;
/** Capacity of the publisher's in-memory buffer. */
export const DEFAULT_BUFFER_SIZE = 10_000;
/** First pause after a failed write; doubles up to {@link DEFAULT_DRAIN_MAX_BACKOFF_MS}. */
export const DEFAULT_DRAIN_INITIAL_INTERVAL_MS = 1000;
export const DEFAULT_DRAIN_MAX_BACKOFF_MS = 30_000;
/** How long `close()` keeps draining before it gives up and reports what was not written. */
export const DEFAULT_SHUTDOWN_DRAIN_TIMEOUT_MS = 5000;
/** Entries written per round trip (one pipeline of XADDs). */
export const DEFAULT_DRAIN_BATCH_SIZE = 1000;
/** A write that gets no answer by then fails (and is retried): the original's per-XADD timeout. */
export const DEFAULT_WRITE_TIMEOUT_MS = 5000;

/** The original's cursor key is `mainflux:cursor:<name>:<stream>`. */
export const DEFAULT_CURSOR_PREFIX = 'mainflux';
/** Fan-out subscribers start at `$` on first boot: history is skipped. */
export const DEFAULT_FAN_OUT_START = '$';
export const DEFAULT_READ_COUNT = 100;
export const DEFAULT_BLOCK_MS = 1000;
/** Fan-out mode: a failing handler is called this many times in all, then the entry is skipped. */
export const DEFAULT_HANDLER_ATTEMPTS = 2;
export const DEFAULT_HANDLER_RETRY_DELAY_MS = 500;
export const DEFAULT_READ_BACKOFF_INITIAL_MS = 1000;
export const DEFAULT_READ_BACKOFF_MAX_MS = 30_000;

/** Consumer groups (Watermill's model): where a new group starts reading. */
export const DEFAULT_GROUP_START_ID = '$';
/** A pending entry idle this long is claimed by another consumer (XAUTOCLAIM). */
export const DEFAULT_MIN_IDLE_MS = 60_000;
export const DEFAULT_CLAIM_INTERVAL_MS = 5000;
/** Deliveries (counted by Redis, read from XPENDING) after which an entry goes to the dead-letter stream. */
export const DEFAULT_MAX_DELIVERIES = 5;
/** Pause before a nacked entry is delivered again in this process. */
export const DEFAULT_NACK_RETRY_DELAY_MS = 1000;
/** Other consumers idle this long and holding nothing pending are deleted. */
export const DEFAULT_CONSUMER_TIMEOUT_MS = 600_000;
export const DEFAULT_CHECK_CONSUMERS_INTERVAL_MS = 300_000;
/** Appended to the stream name when no dead-letter stream is given. */
export const DEAD_LETTER_SUFFIX = ':dead';

/** The transport's stream, unique-key prefix and work-queue group. */
export const DEFAULT_TRANSPORT_STREAM = 'herald:events';
export const DEFAULT_TRANSPORT_GROUP = 'herald';
export const DEFAULT_TRANSPORT_READ_COUNT = 1000;
export const DEFAULT_UNIQUE_PREFIX = 'herald:unique';

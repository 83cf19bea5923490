import { systemClock, type Clock } from '../common/clock.js';
import { InvalidEventError, PayloadTooLargeError } from '../common/errors.js';
import { EnvelopeRecord } from '../common/envelope-record.js';
import type { Codec } from '../interfaces/codec.interface.js';
import type { Envelope, HeraldEvent } from '../interfaces/envelope.interface.js';
import { UuidSource } from './event-bus.ids.js';
import type { PostOptions } from './event-bus.options.js';

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
/** The headers of an event posted without any: one shared frozen object. */
export const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});
/** Posts one reading of the system clock serves at most, within one synchronous run. */
const TIME_READING_USES = 256;

/** A source or event that can be posted: a non-empty string, not the pattern `'*'`. */
export function validName(name: unknown, what: string): string {
  // Lengths first: a length is one load, a string comparison a call.
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidEventError(`${what} must be a non-empty string`);
  }
  if (name.length === 1 && name === '*') {
    throw new InvalidEventError(`${what} '*' is a pattern and cannot be posted`);
  }
  return name;
}

function validKey(key: readonly (bigint | number)[]): bigint[] {
  if (!Array.isArray(key)) throw new InvalidEventError('key must be an array of int64 values');
  return key.map((part, i) => {
    if (typeof part === 'number' && Number.isSafeInteger(part)) return BigInt(part);
    if (typeof part === 'bigint' && part >= INT64_MIN && part <= INT64_MAX) return part;
    throw new InvalidEventError(`key[${i}] must be an int64 (a bigint, or a safe integer number)`);
  });
}

function validHeaders(headers: unknown): Readonly<Record<string, string>> {
  if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) {
    throw new InvalidEventError('headers must be an object of strings');
  }
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value !== 'string') throw new InvalidEventError(`headers.${name} must be a string`);
  }
  return { ...(headers as Record<string, string>) };
}

/**
 * Builds what the bus sends and what its handlers receive: validated
 * envelopes for `post` (names, key, headers, unique, encoded payload within
 * the transport's limit), events for `postLocal` (the very object), and the
 * event a handler sees for a delivered envelope.
 */
/**
 * The event handlers see for an envelope that crossed a transport: its data
 * decoded by `codec` (throws what the codec throws). The one place this
 * shape is built: the bus's dispatch and the testing kit's view of posts.
 */
export function receivedEvent(envelope: Envelope, codec: Codec, attempt: number): HeraldEvent {
  const data = codec.decode(envelope.payload);
  const { key, unique } = envelope;
  // Most events carry neither: the fields a `postLocal` event has, in its
  // order (one shape for the handlers' property reads), and 16 bytes fewer
  // than with the two as `undefined` (issue 24: 96 B, was 112 per event).
  if (key === undefined && unique === undefined) {
    return {
      id: envelope.id,
      source: envelope.source,
      event: envelope.event,
      data,
      origin: envelope.origin,
      occurredAt: envelope.occurredAt,
      headers: envelope.headers ?? NO_HEADERS,
      local: false,
      attempt,
    };
  }
  return {
    id: envelope.id,
    source: envelope.source,
    event: envelope.event,
    data,
    key,
    unique,
    origin: envelope.origin,
    occurredAt: envelope.occurredAt,
    headers: envelope.headers ?? NO_HEADERS,
    local: false,
    attempt,
  };
}

export class EnvelopeFactory {
  private lastNow = NaN;
  /**
   * The last reading as ISO-8601, and the posts it may still serve (see
   * {@link isoNow}). Public, with {@link ids}, for `EventBus.postLocal`,
   * which builds its event inline (one function fewer for V8 to compile on
   * a cold app's posting path) exactly as {@link local} does.
   */
  lastIso = '';
  readingUses = 0;
  private expiryQueued = false;
  readonly ids = new UuidSource();

  constructor(
    /** Read by `EventBus.post`, which builds its envelope inline as {@link envelope} does. */
    readonly codec: Codec,
    private readonly origin: string,
    private readonly clock: Clock,
    /** The transport's declared payload limit, in bytes (read by `EventBus.post`, see {@link codec}). */
    readonly maxPayloadBytes: number | undefined,
    /** The transport that takes `tx` (`features.postsInTransaction`), by name; undefined when it cannot. */
    private readonly transactionTransport?: {
      readonly name: string;
      readonly postsInTransaction: boolean;
    },
    /**
     * Envelopes leave the process (a transport writes their ids): flat ids
     * ({@link UuidSource.flatUuid}), else ropes. Read by `EventBus.post`.
     */
    readonly flatIds = false,
  ) {}

  /** A validated envelope; throws the typed error of the first problem. */
  envelope(source: string, event: string, data?: unknown, options?: PostOptions): Envelope {
    validName(source, 'source');
    validName(event, 'event');
    const payload = this.codec.encode(data);
    const limit = this.maxPayloadBytes;
    // A UTF-16 unit is at most 3 UTF-8 bytes: count bytes only when it could matter.
    if (limit !== undefined && payload.length * 3 > limit) {
      const tooLarge = this.oversize(payload);
      if (tooLarge !== undefined) throw tooLarge;
    }
    // Most posts have no options: nothing to check, and an envelope without
    // the optional fields (key, unique, headers): 24 bytes fewer per post,
    // and the envelope lives until the transport accepted it (issue 24).
    // The class `post` makes too: one map, and never pretenured (posts
    // queued while disconnected come out of here a thousand at a time).
    if (options === undefined) {
      return new EnvelopeRecord(
        this.flatIds ? this.ids.flatUuid() : this.ids.uuid(),
        source,
        event,
        payload,
        this.origin,
        this.isoNow(),
      );
    }
    return this.withOptions(source, event, payload, options);
  }

  /** The error of a payload over the transport's limit, counted in UTF-8 bytes; undefined when it fits. */
  oversize(payload: string): PayloadTooLargeError | undefined {
    const limit = this.maxPayloadBytes;
    if (limit === undefined) return undefined;
    const size = Buffer.byteLength(payload);
    return size > limit ? new PayloadTooLargeError(size, limit) : undefined;
  }

  /** {@link envelope} of a post with options, once its payload is encoded. */
  private withOptions(
    source: string,
    event: string,
    payload: string,
    options: PostOptions,
  ): Envelope {
    if ('wait' in options) {
      // Handlers of other processes cannot be awaited from here.
      throw new InvalidEventError(
        "post() takes no 'wait': its handlers may run in other processes; use postLocal(source, event, data, { wait: true }) to await this process's handlers, or whenIdle()",
      );
    }
    if (
      options.unique !== undefined &&
      (typeof options.unique !== 'string' || options.unique === '')
    ) {
      throw new InvalidEventError('unique must be a non-empty string');
    }
    const tx = options.tx;
    if (tx !== undefined) {
      if (!this.transactionTransport?.postsInTransaction)
        throw new InvalidEventError(
          `tx: the ${this.transactionTransport?.name ?? 'current'} transport cannot post in a transaction`,
        );
      if (typeof (tx as { query?: unknown } | null)?.query !== 'function')
        throw new InvalidEventError('tx must be a database client with query(text, values)');
    }
    const id = this.flatIds ? this.ids.flatUuid() : this.ids.uuid();
    const key = options.key === undefined ? undefined : validKey(options.key);
    const headers = options.headers === undefined ? undefined : validHeaders(options.headers);
    const occurredAt = this.isoNow();
    // transportOptions only when given: every other envelope keeps its shape.
    if (tx === undefined) {
      return {
        id,
        source,
        event,
        payload,
        key,
        unique: options.unique,
        origin: this.origin,
        occurredAt,
        headers,
      };
    }
    return {
      id,
      source,
      event,
      payload,
      key,
      unique: options.unique,
      origin: this.origin,
      occurredAt,
      headers,
      transportOptions: { tx },
    };
  }

  /** A `postLocal` event: the very object, never encoded. */
  local(
    source: string,
    event: string,
    data: unknown,
    headers?: Readonly<Record<string, string>>,
  ): HeraldEvent {
    validName(source, 'source');
    validName(event, 'event');
    return {
      id: this.ids.uuid(),
      source,
      event,
      data,
      origin: this.origin,
      occurredAt: this.isoNow(),
      headers: headers === undefined ? NO_HEADERS : validHeaders(headers),
      local: true,
      attempt: 1,
    };
  }

  /** The event handlers see for a delivered envelope; throws what the codec throws. */
  received(envelope: Envelope, attempt: number): HeraldEvent {
    return receivedEvent(envelope, this.codec, attempt);
  }

  /**
   * The clock's time as ISO-8601. Formatting a Date is costly: once per
   * millisecond. On the system clock, reading the time is too: a reading
   * serves the posts of the same synchronous run, at most
   * {@link TIME_READING_USES} of them (a run of posts takes microseconds;
   * `occurredAt` has millisecond precision). An injected clock is read on
   * every post, so tests that move it see each move.
   */
  isoNow(): string {
    if (this.readingUses > 0) {
      this.readingUses--;
      return this.lastIso;
    }
    const now = this.clock.now();
    if (now !== this.lastNow) {
      this.lastNow = now;
      this.lastIso = new Date(now).toISOString();
    }
    if (this.clock === systemClock) {
      this.readingUses = TIME_READING_USES - 1;
      if (!this.expiryQueued) {
        this.expiryQueued = true;
        queueMicrotask(this.expireReading);
      }
    }
    return this.lastIso;
  }

  private readonly expireReading = (): void => {
    this.readingUses = 0;
    this.expiryQueued = false;
  };
}

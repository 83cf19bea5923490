import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import {
  booleanOption,
  integerOption,
  invalidOption,
  nonNegativeNumberOption,
  objectOption,
  oneOfOption,
  optionsObject,
  positiveNumberOption,
  stringOption,
} from '../../common/options.validation.js';
import {
  checkClusterStream,
  checkConnectionOptions,
  hashTagOf,
  CONNECTION_OPTION_KEYS,
  type RedisConnectionOptions,
} from './redis.connection.js';
import {
  DEAD_LETTER_SUFFIX,
  DEFAULT_BLOCK_MS,
  DEFAULT_CHECK_CONSUMERS_INTERVAL_MS,
  DEFAULT_CLAIM_INTERVAL_MS,
  DEFAULT_CONSUMER_TIMEOUT_MS,
  DEFAULT_CURSOR_PREFIX,
  DEFAULT_FAN_OUT_START,
  DEFAULT_GROUP_START_ID,
  DEFAULT_HANDLER_ATTEMPTS,
  DEFAULT_HANDLER_RETRY_DELAY_MS,
  DEFAULT_MAX_DELIVERIES,
  DEFAULT_MAX_LEN,
  DEFAULT_MIN_IDLE_MS,
  DEFAULT_NACK_RETRY_DELAY_MS,
  DEFAULT_READ_BACKOFF_INITIAL_MS,
  DEFAULT_READ_BACKOFF_MAX_MS,
  DEFAULT_READ_COUNT,
} from './redis.constants.js';
import { EmptyStreamError, EmptySubscriberNameError } from './redis.errors.js';

/**
 * Consumer-group mode (beyond the original, after Watermill): each entry goes
 * to one consumer of the group, is acknowledged only after its handler
 * succeeded, and is delivered again otherwise. @publicApi
 */
export interface ConsumerGroupOptions {
  /** The group. @default the subscriber's `name` */
  name?: string;
  /** This consumer's name, unique per process. @default `<host>-<pid>-<random>` */
  consumer?: string;
  /** Where a new group starts: `$` (only new entries) or `0` (the whole stream). @default '$' */
  startId?: string;
  /**
   * A pending entry idle longer than this is claimed by another consumer
   * (XAUTOCLAIM). Entries this consumer is still handling are kept from
   * going idle by `XCLAIM ... JUSTID` heartbeats every `minIdleMs / 3`.
   * @default 60000
   */
  minIdleMs?: number;
  /** How often stale pending entries are looked for. @default 5000 */
  claimIntervalMs?: number;
  /** An entry delivered more times than this (Redis's count, from XPENDING) goes to the dead-letter stream. @default 5 */
  maxDeliveries?: number;
  /** Where dead letters go. @default `<stream>:dead` */
  deadLetterStream?: string;
  /** Pause before a failed entry is delivered again in this process. @default 1000 */
  nackRetryDelayMs?: number;
  /**
   * When your handlers have a timeout, give it: `minIdleMs` must exceed it,
   * checked at start. @default none
   */
  handlerTimeoutMs?: number;
  /** Other consumers idle this long and holding nothing pending are deleted. @default 600000 */
  consumerTimeoutMs?: number;
  /** How often idle consumers are looked for; 0 never. @default 300000 */
  checkConsumersIntervalMs?: number;
  /** Delete the whole group at `close()` (a per-instance group nobody else reads). @default false */
  destroyOnClose?: boolean;
}

/** Options of {@link StreamSubscriber}; fan-out defaults are the original's. @publicApi */
export interface StreamSubscriberOptions extends RedisConnectionOptions {
  /** The stream read. Required, non-empty. */
  stream: string;
  /** The subscriber's name: part of the cursor key, and the default group name. Required, non-empty. */
  name: string;
  /** Fan-out mode: the cursor key is `<cursorPrefix>:cursor:<name>:<stream>`. @default 'mainflux' */
  cursorPrefix?: string;
  /** Fan-out mode: where the first boot starts (`$` skips history, `0` reads it). @default '$' */
  start?: string;
  /** Entries per read. @default 100 */
  count?: number;
  /** How long one read blocks waiting for entries. @default 1000 */
  blockMs?: number;
  /** Fan-out mode: calls of a failing handler in all before the entry is skipped. @default 2 */
  handlerAttempts?: number;
  /** Fan-out mode: pause between those calls. @default 500 */
  handlerRetryDelayMs?: number;
  /** First pause after a read error; doubles up to `readBackoffMaxMs`. @default 1000 */
  readBackoffInitialMs?: number;
  /** @default 30000 */
  readBackoffMaxMs?: number;
  /** Handlers running at once; 1 keeps stream order. @default 1 */
  concurrency?: number;
  /**
   * Group mode: entries read and not yet settled before reading pauses; a
   * consumer behind reads ahead within it (two reads in flight). @default 3 × count
   */
  maxInFlight?: number;
  /** Approximate length of the dead-letter stream. @default 100000 */
  deadLetterMaxLen?: number;
  /**
   * Group mode: `script` reads batches with XREADGROUP inside a script that
   * returns one framed string (far less client CPU), blocking with a plain
   * XREADGROUP only once the stream is drained; `command` always uses plain
   * XREADGROUP. `script` falls back to `command` where scripts are refused.
   * @default 'script'
   */
  readMode?: 'script' | 'command';
  /** Consumer-group mode; a string names the group. @default fan-out mode (XREAD, cursor key) */
  group?: ConsumerGroupOptions | string;
}

/** A consumer name no other process uses: host, pid and random bytes. @publicApi */
export function uniqueConsumerName(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** Group mode settings, checked, defaults filled in. */
export interface GroupSettings {
  readonly name: string;
  readonly consumer: string;
  readonly startId: string;
  readonly minIdleMs: number;
  readonly claimIntervalMs: number;
  readonly maxDeliveries: number;
  readonly deadLetterStream: string;
  readonly nackRetryDelayMs: number;
  readonly consumerTimeoutMs: number;
  readonly checkConsumersIntervalMs: number;
  readonly destroyOnClose: boolean;
}

/** {@link StreamSubscriberOptions} checked, defaults filled in. */
export interface ResolvedStreamSubscriberOptions {
  readonly stream: string;
  readonly name: string;
  readonly cursorKey: string;
  readonly start: string;
  readonly count: number;
  readonly blockMs: number;
  readonly handlerAttempts: number;
  readonly handlerRetryDelayMs: number;
  readonly readBackoffInitialMs: number;
  readonly readBackoffMaxMs: number;
  readonly concurrency: number;
  readonly maxInFlight: number;
  readonly deadLetterMaxLen: number;
  readonly readMode: 'script' | 'command';
  readonly group?: GroupSettings;
}

const SCOPE = 'StreamSubscriber';

const KEYS: readonly (keyof StreamSubscriberOptions & string)[] = [
  ...CONNECTION_OPTION_KEYS,
  'stream',
  'name',
  'cursorPrefix',
  'start',
  'count',
  'blockMs',
  'handlerAttempts',
  'handlerRetryDelayMs',
  'readBackoffInitialMs',
  'readBackoffMaxMs',
  'concurrency',
  'maxInFlight',
  'deadLetterMaxLen',
  'readMode',
  'group',
];

/** Every key of {@link ConsumerGroupOptions}; the microservice server checks its `groupOptions` against it too. */
export const GROUP_KEYS: readonly (keyof ConsumerGroupOptions & string)[] = [
  'name',
  'consumer',
  'startId',
  'minIdleMs',
  'claimIntervalMs',
  'maxDeliveries',
  'deadLetterStream',
  'nackRetryDelayMs',
  'handlerTimeoutMs',
  'consumerTimeoutMs',
  'checkConsumersIntervalMs',
  'destroyOnClose',
];

function resolveGroup(
  input: ConsumerGroupOptions | string,
  subscriberName: string,
  stream: string,
): GroupSettings {
  const scope = `${SCOPE}: group`;
  if (typeof input !== 'string') objectOption(SCOPE, 'group', input);
  const group = optionsObject<ConsumerGroupOptions>(
    scope,
    typeof input === 'string' ? { name: input } : input,
    GROUP_KEYS,
  );
  const name = group.name ?? subscriberName;
  if (typeof name !== 'string' || name === '')
    invalidOption(SCOPE, 'group.name', 'a non-empty string (the group name)', name);
  const minIdleMs = positiveNumberOption(
    SCOPE,
    'group.minIdleMs',
    group.minIdleMs,
    DEFAULT_MIN_IDLE_MS,
  );
  const handlerTimeoutMs = positiveNumberOption(
    SCOPE,
    'group.handlerTimeoutMs',
    group.handlerTimeoutMs,
    undefined,
  );
  if (handlerTimeoutMs !== undefined && !(minIdleMs > handlerTimeoutMs)) {
    invalidOption(
      SCOPE,
      'group.minIdleMs',
      `more than group.handlerTimeoutMs (${handlerTimeoutMs}), or live work would be claimed by another consumer: group.minIdleMs (${minIdleMs}) must exceed group.handlerTimeoutMs`,
      minIdleMs,
    );
  }
  return {
    name,
    consumer: stringOption(SCOPE, 'group.consumer', group.consumer, uniqueConsumerName()),
    startId: stringOption(SCOPE, 'group.startId', group.startId, DEFAULT_GROUP_START_ID),
    minIdleMs,
    claimIntervalMs: positiveNumberOption(
      SCOPE,
      'group.claimIntervalMs',
      group.claimIntervalMs,
      DEFAULT_CLAIM_INTERVAL_MS,
    ),
    maxDeliveries: integerOption(
      SCOPE,
      'group.maxDeliveries',
      group.maxDeliveries,
      DEFAULT_MAX_DELIVERIES,
      1,
    ),
    deadLetterStream: stringOption(
      SCOPE,
      'group.deadLetterStream',
      group.deadLetterStream,
      `${stream}${DEAD_LETTER_SUFFIX}`,
    ),
    nackRetryDelayMs: nonNegativeNumberOption(
      SCOPE,
      'group.nackRetryDelayMs',
      group.nackRetryDelayMs,
      DEFAULT_NACK_RETRY_DELAY_MS,
    ),
    consumerTimeoutMs: positiveNumberOption(
      SCOPE,
      'group.consumerTimeoutMs',
      group.consumerTimeoutMs,
      DEFAULT_CONSUMER_TIMEOUT_MS,
    ),
    checkConsumersIntervalMs: nonNegativeNumberOption(
      SCOPE,
      'group.checkConsumersIntervalMs',
      group.checkConsumersIntervalMs,
      DEFAULT_CHECK_CONSUMERS_INTERVAL_MS,
    ),
    destroyOnClose: booleanOption(SCOPE, 'group.destroyOnClose', group.destroyOnClose, false),
  };
}

/**
 * Checks a subscriber's options in one place: unknown keys refused (in
 * `group` too), every value's type and range checked. A missing stream or
 * name is the original's {@link EmptyStreamError} /
 * {@link EmptySubscriberNameError} (both InvalidOptionsError).
 * @throws InvalidOptionsError naming the option, the rule and the value
 */
export function resolveStreamSubscriberOptions(
  input: StreamSubscriberOptions,
): ResolvedStreamSubscriberOptions {
  if (typeof input?.stream !== 'string' || input.stream === '')
    throw new EmptyStreamError(input?.stream);
  if (typeof input.name !== 'string' || input.name === '')
    throw new EmptySubscriberNameError(input.name);
  const options = optionsObject<StreamSubscriberOptions>(SCOPE, input, KEYS);
  checkConnectionOptions(SCOPE, options);
  const { stream, name } = options;
  checkClusterStream(SCOPE, stream, options);
  const cursorPrefix = stringOption(
    SCOPE,
    'cursorPrefix',
    options.cursorPrefix,
    DEFAULT_CURSOR_PREFIX,
  );
  const count = integerOption(SCOPE, 'count', options.count, DEFAULT_READ_COUNT, 1);
  // The transport hands the bus everything it reads: Infinity is a valid concurrency.
  const concurrency =
    options.concurrency === Number.POSITIVE_INFINITY
      ? options.concurrency
      : integerOption(SCOPE, 'concurrency', options.concurrency, 1, 1);
  return {
    stream,
    name,
    cursorKey: `${cursorPrefix}:cursor:${name}:${stream}`,
    start: stringOption(SCOPE, 'start', options.start, DEFAULT_FAN_OUT_START),
    count,
    blockMs: positiveNumberOption(SCOPE, 'blockMs', options.blockMs, DEFAULT_BLOCK_MS),
    handlerAttempts: integerOption(
      SCOPE,
      'handlerAttempts',
      options.handlerAttempts,
      DEFAULT_HANDLER_ATTEMPTS,
      1,
    ),
    handlerRetryDelayMs: nonNegativeNumberOption(
      SCOPE,
      'handlerRetryDelayMs',
      options.handlerRetryDelayMs,
      DEFAULT_HANDLER_RETRY_DELAY_MS,
    ),
    readBackoffInitialMs: positiveNumberOption(
      SCOPE,
      'readBackoffInitialMs',
      options.readBackoffInitialMs,
      DEFAULT_READ_BACKOFF_INITIAL_MS,
    ),
    readBackoffMaxMs: positiveNumberOption(
      SCOPE,
      'readBackoffMaxMs',
      options.readBackoffMaxMs,
      DEFAULT_READ_BACKOFF_MAX_MS,
    ),
    concurrency,
    maxInFlight: integerOption(SCOPE, 'maxInFlight', options.maxInFlight, count * 3, 1),
    deadLetterMaxLen: nonNegativeNumberOption(
      SCOPE,
      'deadLetterMaxLen',
      options.deadLetterMaxLen,
      DEFAULT_MAX_LEN,
    ),
    readMode: oneOfOption(SCOPE, 'readMode', options.readMode, ['script', 'command'], 'script'),
    group: options.group === undefined ? undefined : checkDeadLetterSlot(options, stream, name),
  };
}

/** Cluster mode: the dead-letter stream goes in one MULTI with the stream, so it needs the same hash tag. */
function checkDeadLetterSlot(
  options: StreamSubscriberOptions,
  stream: string,
  name: string,
): GroupSettings {
  const group = resolveGroup(options.group!, name, stream);
  if (options.cluster !== undefined && hashTagOf(group.deadLetterStream) !== hashTagOf(stream))
    invalidOption(
      SCOPE,
      'group.deadLetterStream',
      `a name with the stream's hash tag {${hashTagOf(stream)}} in cluster mode (dead-lettering is one MULTI with the stream)`,
      group.deadLetterStream,
    );
  return group;
}

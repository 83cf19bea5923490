import {
  booleanOption,
  integerOption,
  invalidOption,
  nonNegativeNumberOption,
  oneOfOption,
  optionsObject,
  positiveNumberOption,
  stringOption,
} from '../../common/options.validation.js';
import {
  checkClusterStream,
  checkConnectionOptions,
  CONNECTION_OPTION_KEYS,
  type RedisConnectionOptions,
} from './redis.connection.js';
import type { HeraldEntryLayout } from './envelope.codec.js';
import {
  DEFAULT_TRANSPORT_GROUP,
  DEFAULT_TRANSPORT_READ_COUNT,
  DEFAULT_TRANSPORT_STREAM,
  DEFAULT_UNIQUE_PREFIX,
} from './redis.constants.js';

/** `connect()` rejects if Redis cannot be reached by then. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

/**
 * Options of the redis transport (`EventsModule.forRoot({ transport: 'redis', redis })`).
 * Every instance posts to one stream that carries source and event in each
 * entry, so every `@OnEvent` pattern (`'*'` and no pattern included) works.
 * @publicApi
 */
export interface RedisTransportOptions extends RedisConnectionOptions {
  /**
   * How events sit in the stream:
   * - `herald` (default): one stream for the whole app (`stream`), each entry
   *   carrying source, event and the codec's payload;
   * - `mainflux`: the entries of a Mainflux / Magistrala Go service
   *   (`pkg/events`): the stream is the source, the `operation` field the
   *   event, every other field a string member of the data. Give the
   *   streams to read in `streams`; a post to source S is written to stream
   *   S. Broadcast mode reads with `XREAD` from the Go subscriber's cursor
   *   key `mainflux:cursor:<instance>:<stream>` (so `instance` is
   *   required); work-queue mode reads in consumer group `group`.
   * @default 'herald'
   */
  layout?: 'herald' | 'mainflux';
  /**
   * Layout `herald`: how this instance writes an entry (it reads all three;
   * see {@link HeraldEntryLayout}):
   * - `compact` (default): one field, `herald`, holding `~`, the id, source,
   *   event, origin and time (epoch milliseconds) separated by spaces, a
   *   newline, then the payload; an event that does not fit (a key, unique
   *   or headers, a name with a space) goes `one-field`;
   * - `one-field`: one field, `herald`, holding the header's JSON text, a
   *   newline, then the payload, as versions before `compact` wrote;
   * - `two-field`: `herald` (the header's JSON text) and `payload`, as
   *   versions before `one-field` wrote.
   *
   * Readers of earlier versions cannot read the newer layouts (they
   * dead-letter them as `entry-not-an-event`): while any instance of an
   * earlier version reads the stream, give the writers the layout it reads,
   * and switch once every reader is upgraded. @default 'compact'
   */
  heraldEntry?: HeraldEntryLayout;
  /** The stream every event of the app goes through (layout `herald`). @default 'herald:events' */
  stream?: string;
  /** Layout `mainflux`: the streams read, e.g. `['mainflux.things']`; each one is a source. */
  streams?: readonly string[];
  /**
   * `broadcast`: every instance handles every event (each has its own
   * consumer group). `work-queue`: each event is handled by one instance of
   * the group. @default 'broadcast'
   */
  mode?: 'broadcast' | 'work-queue';
  /**
   * Work queue: the group all instances join. Broadcast: the prefix of each
   * instance's group, `<group>:<instance>`. @default 'herald'
   */
  group?: string;
  /**
   * Broadcast: a stable name for this instance (e.g. the pod name), so its
   * group outlives restarts and it catches up on what it missed. Without it
   * the group is per process and deleted at close. @default none
   */
  instance?: string;
  /**
   * This instance's consumer name in its group (layout `herald`, either mode). A stable name
   * (with a stable `instance`) lets a successor process take over the
   * group's cursor and the entries left pending under that name.
   * @default `<host>-<pid>-<random>`
   */
  consumer?: string;
  /**
   * `false`: this process only publishes to the stream and never reads it
   * (no consumer group, no reader connection): its handlers get nothing
   * from this transport, its own posts included (`features.loopback` is
   * false then). @default true
   */
  intake?: boolean;
  /**
   * Where a new group starts: `$` (events posted from now on) or `0` (the
   * whole stream). @default '$'
   */
  startId?: string;
  /** Approximate stream retention (XADD MAXLEN ~). @default 100000 */
  maxLen?: number;
  /** Publisher buffer; when full the oldest unwritten event is dropped (its post rejects). @default 10000 */
  bufferSize?: number;
  /** @default 1000 */
  drainInitialIntervalMs?: number;
  /** @default 30000 */
  drainMaxBackoffMs?: number;
  /** @default 5000 */
  shutdownDrainTimeoutMs?: number;
  /** XADDs per round trip. @default 1000 */
  drainBatchSize?: number;
  /** Entries per XREADGROUP. @default 1000 */
  readCount?: number;
  /** @default 1000 */
  blockMs?: number;
  /**
   * Entries read and not yet settled before reading pauses; a consumer behind
   * reads ahead within it (two reads in flight). Keep it within the bus's
   * `maxPending`: an entry past it is nacked and read again.
   * @default 3 × readCount, at most 10240 (the bus's default `maxPending`) but not under 2 × readCount
   */
  maxInFlight?: number;
  /** A pending entry idle this long is claimed by another instance. @default 60000 */
  minIdleMs?: number;
  /** @default 5000 */
  claimIntervalMs?: number;
  /** Deliveries after which an event goes to the dead-letter stream. @default 5 */
  maxDeliveries?: number;
  /** @default `<stream>:dead` */
  deadLetterStream?: string;
  /** Pause before a nacked event is delivered again. @default 1000 */
  nackRetryDelayMs?: number;
  /** Prefix of the `SET NX PX` keys that run a `unique` event once across instances. @default 'herald:unique' */
  uniquePrefix?: string;
  /** `connect()` rejects if Redis is not reachable by then. @default 30000 */
  connectTimeoutMs?: number;
  /**
   * A post resolves only once this many replicas have its entry (`WAIT`
   * after each write batch); fewer in `waitTimeoutMs` rejects the post with
   * `ReplicasNotConfirmedError`. See the publisher's option. @default 0
   */
  waitReplicas?: number;
  /** @default 1000 */
  waitTimeoutMs?: number;
}

/** {@link RedisTransportOptions} checked, with the transport's own defaults filled in. */
export interface ResolvedRedisTransportOptions extends RedisTransportOptions {
  readonly layout: 'herald' | 'mainflux';
  readonly heraldEntry: HeraldEntryLayout;
  readonly stream: string;
  readonly streams: readonly string[];
  readonly mode: 'broadcast' | 'work-queue';
  readonly group: string;
  readonly uniquePrefix: string;
  readonly readCount: number;
  readonly connectTimeoutMs: number;
  readonly intake: boolean;
}

const SCOPE = 'RedisTransport';

const KEYS: readonly (keyof RedisTransportOptions & string)[] = [
  ...CONNECTION_OPTION_KEYS,
  'layout',
  'heraldEntry',
  'stream',
  'streams',
  'mode',
  'group',
  'instance',
  'consumer',
  'intake',
  'startId',
  'maxLen',
  'bufferSize',
  'drainInitialIntervalMs',
  'drainMaxBackoffMs',
  'shutdownDrainTimeoutMs',
  'drainBatchSize',
  'readCount',
  'blockMs',
  'maxInFlight',
  'minIdleMs',
  'claimIntervalMs',
  'maxDeliveries',
  'deadLetterStream',
  'nackRetryDelayMs',
  'uniquePrefix',
  'connectTimeoutMs',
  'waitReplicas',
  'waitTimeoutMs',
];

/**
 * Checks the redis transport's options (one place, issue 14): unknown keys
 * refused, each value's type and range checked, naming the option, the rule
 * and the value. @throws InvalidOptionsError
 */
export function resolveRedisTransportOptions(
  input: RedisTransportOptions | undefined,
): ResolvedRedisTransportOptions {
  const options = optionsObject(SCOPE, input, KEYS);
  checkConnectionOptions(SCOPE, options);
  for (const name of ['instance', 'consumer', 'startId', 'deadLetterStream'] as const)
    stringOption(SCOPE, name, options[name], undefined);
  for (const name of [
    'bufferSize',
    'drainInitialIntervalMs',
    'drainMaxBackoffMs',
    'drainBatchSize',
    'blockMs',
    'maxInFlight',
    'minIdleMs',
    'claimIntervalMs',
    'maxDeliveries',
  ] as const)
    positiveNumberOption(SCOPE, name, options[name], undefined);
  for (const name of ['waitReplicas', 'waitTimeoutMs'] as const)
    integerOption(SCOPE, name, options[name], 0, 0);
  for (const name of ['maxLen', 'shutdownDrainTimeoutMs', 'nackRetryDelayMs'] as const)
    nonNegativeNumberOption(SCOPE, name, options[name], undefined);
  const layout = oneOfOption(SCOPE, 'layout', options.layout, ['herald', 'mainflux'], 'herald');
  const heraldEntry = oneOfOption<HeraldEntryLayout, HeraldEntryLayout>(
    SCOPE,
    'heraldEntry',
    options.heraldEntry,
    ['compact', 'one-field', 'two-field'],
    'compact',
  );
  if (layout === 'mainflux' && options.heraldEntry !== undefined)
    invalidOption(SCOPE, 'heraldEntry', "used with layout 'herald' only", options.heraldEntry);
  const mode = oneOfOption(SCOPE, 'mode', options.mode, ['broadcast', 'work-queue'], 'broadcast');
  const streams = checkStreams(layout, options);
  for (const name of layout === 'mainflux' ? streams : [options.stream ?? DEFAULT_TRANSPORT_STREAM])
    checkClusterStream(SCOPE, name, options);
  if (layout === 'mainflux' && mode === 'broadcast' && options.instance === undefined)
    invalidOption(
      SCOPE,
      'instance',
      "given with layout 'mainflux' in broadcast mode (the cursor key's name, mainflux:cursor:<instance>:<stream>)",
      options.instance,
    );
  return {
    ...options,
    layout,
    heraldEntry,
    streams,
    stream: stringOption(SCOPE, 'stream', options.stream, DEFAULT_TRANSPORT_STREAM),
    mode,
    group: stringOption(SCOPE, 'group', options.group, DEFAULT_TRANSPORT_GROUP),
    uniquePrefix: stringOption(SCOPE, 'uniquePrefix', options.uniquePrefix, DEFAULT_UNIQUE_PREFIX),
    readCount: integerOption(
      SCOPE,
      'readCount',
      options.readCount,
      DEFAULT_TRANSPORT_READ_COUNT,
      1,
    ),
    connectTimeoutMs: positiveNumberOption(
      SCOPE,
      'connectTimeoutMs',
      options.connectTimeoutMs,
      DEFAULT_CONNECT_TIMEOUT_MS,
    ),
    intake: booleanOption(SCOPE, 'intake', options.intake, true),
  };
}

/** Layout `mainflux` reads `streams` (a non-empty list of names); layout `herald` reads `stream`. */
function checkStreams(
  layout: 'herald' | 'mainflux',
  options: RedisTransportOptions,
): readonly string[] {
  if (layout === 'herald') {
    if (options.streams !== undefined)
      invalidOption(SCOPE, 'streams', "used with layout 'mainflux' only", options.streams);
    return [];
  }
  if (options.stream !== undefined)
    invalidOption(
      SCOPE,
      'stream',
      "left out with layout 'mainflux' (give the streams read in streams)",
      options.stream,
    );
  const streams = options.streams;
  if (!Array.isArray(streams) || streams.length === 0)
    invalidOption(
      SCOPE,
      'streams',
      "a non-empty array of stream names with layout 'mainflux'",
      streams,
    );
  streams.forEach((name: unknown, i) => {
    if (typeof name !== 'string' || name === '')
      invalidOption(SCOPE, `streams[${i}]`, 'a non-empty string', name);
  });
  if (new Set(streams).size !== streams.length)
    invalidOption(SCOPE, 'streams', 'a list without repeats', streams);
  return [...streams];
}

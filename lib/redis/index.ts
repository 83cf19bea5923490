// `nest-herald/redis`: the only entry point that loads ioredis (an optional peer).
import type { RedisTransportOptions } from '../transports/redis/redis.options.js';

// Adds `redis` to EventsModule's options for apps that import this entry
// point (the root typings name no ioredis type, so apps without it compile).
declare module 'nest-herald' {
  interface TransportSelection {
    /** Options of the `redis` transport (`transport: 'redis'`), from `nest-herald/redis`. */
    redis?: RedisTransportOptions;
  }
  interface TieredUplinkOptions {
    /** The uplink's redis options (`ipc: { uplink: { transport: 'redis', redis } }`), from `nest-herald/redis`. */
    redis?: RedisTransportOptions;
  }
}

export { createTieredTransport } from '../transports/create-tiered.js';

export { RedisTransport } from '../transports/redis/redis.transport.js';
export type { RedisTransportOptions } from '../transports/redis/redis.options.js';
export {
  StreamPublisher,
  type StreamPublisherOptions,
  type PublisherCloseReport,
  type StreamEntryFields,
  type ValueAffix,
} from '../transports/redis/stream.publisher.js';
export {
  StreamSubscriber,
  uniqueConsumerName,
  type ConsumerGroupOptions,
  type StreamHandler,
  type StreamSettlingHandler,
  type StreamMessage,
  type StreamSubscriberOptions,
} from '../transports/redis/stream.subscriber.js';
export {
  RedisConnection,
  DEFAULT_REDIS_URL,
  hasHashTag,
  hashTagOf,
  type RedisConnectionOptions,
} from '../transports/redis/redis.connection.js';
export {
  EVENT_FIELDS,
  decodeStreamEvent,
  encodeStreamEvent,
  fieldsToRecord,
  formatRfc3339Nano,
  jsonField,
  parseRfc3339Nano,
  type DecodedStreamEvent,
  type EventAction,
  type EventIdentity,
  type StreamEvent,
} from '../transports/redis/stream-event.js';
export {
  ENVELOPE_ENTRY_FIELDS,
  decodeEnvelopeEntry,
  decodeEnvelopeFlat,
  encodeEnvelopeEntry,
  encodeEnvelopeValues,
  envelopeAffix,
  type HeraldEntryLayout,
} from '../transports/redis/envelope.codec.js';
export {
  EmptyStreamError,
  EmptySubscriberNameError,
  EventDroppedError,
  EventNotWrittenError,
  isUndecodable,
  RedisClusterError,
  ReplicasNotConfirmedError,
  StreamEntryError,
  UndecodableEntryError,
  UnknownOperationError,
  type ClusterReply,
} from '../transports/redis/redis.errors.js';
export * from '../transports/redis/redis.constants.js';

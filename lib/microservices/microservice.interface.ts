import type {
  ConsumerDeserializer,
  ConsumerSerializer,
  ProducerDeserializer,
  ProducerSerializer,
} from '@nestjs/microservices';
import type { HeraldLogger } from '../common/logger.js';

/**
 * What `status` emits, on servers and clients: `connecting` until the first
 * connection, `connected`, `reconnecting` after a loss, `disconnected` after
 * `close()` (or a fail-fast start that gave up). @publicApi
 */
export type HeraldMicroserviceStatus = 'connecting' | 'connected' | 'reconnecting' | 'disconnected';

/**
 * How `listen()` starts: `fail-fast` calls back (so `app.listen()` /
 * `startAllMicroservices()` resolves) once connected and rejects with
 * `ConnectTimeoutError` after `connectTimeoutMs`; `degraded` calls back at
 * once and keeps connecting in the background (`status` says where it is).
 * @publicApi
 */
export type HeraldStartup = 'fail-fast' | 'degraded';

/** Events of `server.on()` / `client.on()`. @publicApi */
// A type alias, not an interface: Nest's event maps need an implicit index signature.
export type HeraldMicroserviceEvents = {
  /**
   * The status changed.
   * @deprecated Subscribe to `status$` (the one status path, with the
   * reason of each change); this event is fed from it.
   */
  status: (status: HeraldMicroserviceStatus) => void;
  /** The connection came back after a loss (PG: notifications sent meanwhile are lost, resync here). */
  reconnect: () => void;
  /** A message could not be handled or answered (also logged). */
  error: (error: Error) => void;
};

/** Options every herald server takes. @publicApi */
export interface HeraldServerOptions {
  /** @default 'fail-fast' */
  startup?: HeraldStartup;
  /** Fail-fast start: how long `listen()` waits for the connection. @default 10000 */
  connectTimeoutMs?: number;
  /** How long `close()` waits for handlers in flight, in ms. @default 5000 */
  closeTimeoutMs?: number;
  /** Turns outgoing replies into what goes on the wire. @default Nest's IdentitySerializer */
  serializer?: ConsumerSerializer;
  /** Turns incoming messages into `{ pattern, data, id?, metadata? }`. @default Nest's IncomingRequestDeserializer */
  deserializer?: ConsumerDeserializer;
  /** Where the transport's connection messages go. @default consoleLogger */
  logger?: HeraldLogger;
}

/** Options every herald client takes. @publicApi */
export interface HeraldClientOptions {
  /** A request with no reply by then errors with `RequestTimeoutError`; 0 waits forever. @default 30000 */
  requestTimeoutMs?: number;
  /** `connect()` (the first `send`/`emit`) rejects with `ConnectTimeoutError` after this. @default 10000 */
  connectTimeoutMs?: number;
  /** Turns outgoing packets into what goes on the wire. @default Nest's IdentitySerializer */
  serializer?: ProducerSerializer;
  /** Turns incoming replies into `{ id, response?, err?, isDisposed? }`. @default Nest's IncomingResponseDeserializer */
  deserializer?: ProducerDeserializer;
  logger?: HeraldLogger;
}

/** Per-message options, given through {@link HeraldRecord}. @publicApi */
export interface HeraldRecordOptions {
  /** Metadata carried with the packet (merged over what `setOnDispatchHook` sets). */
  metadata?: Record<string, string>;
  /** `send` only: this request's timeout, instead of the client's `requestTimeoutMs`; 0 waits forever. */
  timeoutMs?: number;
}

/**
 * Data with per-message options: `client.send('sum', new HeraldRecord([1, 2], { timeoutMs: 500 }))`.
 * The server's handler receives `data` alone.
 * @publicApi
 */
export class HeraldRecord<T = unknown> {
  constructor(
    readonly data: T,
    readonly options: HeraldRecordOptions = {},
  ) {}
}

// The shared part of the microservice transports, re-exported by `nest-herald/pg/microservice` and `nest-herald/redis/microservice`.
export { HeraldServer, type HeraldIncomingPacket } from './base/herald.server.js';
export { HeraldClient } from './base/herald.client.js';
export type { HeraldLifecycleState } from './base/herald.state.js';
export type { StateChange } from '../common/state-machine.js';
export { PG_NOTIFY_TRANSPORT, REDIS_STREAMS_TRANSPORT } from './microservice.constants.js';
export {
  ConnectTimeoutError,
  InvalidPatternError,
  ReplyTooLargeError,
  RequestTimeoutError,
} from './microservice.errors.js';
export {
  HeraldRecord,
  type HeraldClientOptions,
  type HeraldMicroserviceEvents,
  type HeraldMicroserviceStatus,
  type HeraldRecordOptions,
  type HeraldServerOptions,
  type HeraldStartup,
} from './microservice.interface.js';
export type {
  ClientData,
  ClientEventCatalog,
  ClientMessageCatalog,
  ClientPattern,
  MessageTypes,
  ReplyOf,
  RequestData,
  UntypedClientEvents,
  UntypedClientMessages,
} from './microservice.catalog.js';

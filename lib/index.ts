export * from './bus/errors.js';
export type { Clock } from './bus/clock.js';
export { systemClock } from './bus/clock.js';
export type { Codec } from './bus/codec.interface.js';
export { JsonCodec, jsonCodec } from './bus/json.codec.js';
export type { Envelope, EventHandler, HeraldEvent } from './bus/envelope.interface.js';
export type { HeraldLogger } from './bus/logger.interface.js';
export { consoleLogger, silentLogger } from './bus/logger.interface.js';
export { UniqueCache, type UniqueOptions } from './bus/unique-cache.js';
export { EventBus, type EventBusStats } from './bus/event-bus.js';
export type {
  EventBusOptions,
  HandlerErrorContext,
  PostOptions,
  PostReceipt,
} from './bus/event-bus.options.js';
export type * from './transports/transport.interface.js';
export { LocalTransport } from './transports/local/local.transport.js';
export {
  createTransport,
  type TransportName,
  type TransportSelection,
} from './transports/create-transport.js';
// Nest face
export {
  EventsModule,
  type EventsModuleAsyncOptions,
  type EventsModuleForRootOptions,
} from './events.module.js';
export { EventPublisher } from './event-publisher.js';
export {
  EVENTS_MODULE_OPTIONS,
  EVENT_BUS,
  EVENT_HANDLER_METADATA,
  EVENT_PAYLOAD,
  HERALD_CONTEXT_TYPE,
} from './events.constants.js';
export * from './decorators/index.js';
export type * from './interfaces/index.js';
export * from './transports/ipc/index.js';

export * from './common/errors.js';
export type { Clock } from './common/clock.js';
export { systemClock } from './common/clock.js';
export type { Codec } from './interfaces/codec.interface.js';
export { JsonCodec, jsonCodec } from './common/json.codec.js';
export type {
  Envelope,
  EventHandler,
  HeraldEvent,
  TransactionClient,
  TransportPostOptions,
} from './interfaces/envelope.interface.js';
export type { HeraldLogger } from './common/logger.js';
export { consoleLogger, silentLogger } from './common/logger.js';
export { UniqueCache, type UniqueOptions } from './common/unique-cache.js';
export {
  EventBus,
  type EventBusState,
  type EventBusStats,
  type EventBusStatus,
} from './bus/event-bus.js';
export type {
  EventBusOptions,
  HandlerErrorContext,
  HandlerOutcome,
  LocalPostOptions,
  PostOptions,
  PostReceipt,
} from './bus/event-bus.options.js';
export { BusDrainingError, IdleTimeoutError } from './bus/event-bus.errors.js';
export type * from './interfaces/transport.interface.js';
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
export {
  EventPublisher,
  type LocalPublishOptions,
  type PublishOptions,
  type RequestPostOption,
} from './event-publisher.js';
export { HeraldLazyModuleLoader } from './explorer/herald-lazy-module.loader.js';
export { REQUEST_CONTEXT_HEADER } from './explorer/request-contexts.js';
export { EventValidationError } from './bus/event-bus.schemas.js';
export type { HandlerOptions } from './bus/event-bus.registry.js';
export {
  EVENTS_MODULE_OPTIONS,
  EVENT_BUS,
  EVENT_HANDLER_METADATA,
  EVENT_PAYLOAD,
  HERALD_CONTEXT_TYPE,
} from './events.constants.js';
export * from './decorators/index.js';
export {
  typedOnEvent,
  type TypedHandlerDecorator,
  type TypedOnEvent,
} from './decorators/typed-on-event.decorator.js';
export type * from './interfaces/event-catalog.interface.js';
export type * from './interfaces/standard-schema.interface.js';
export type { EventsModuleOptions, EventsModuleExtras } from './events-module-options.interface.js';
export type { OnEventMetadata, OnEventOptions } from './decorators/on-event-metadata.interface.js';
export * from './transports/ipc/index.js';
export {
  TieredTransport,
  TIER_HOST_HEADER,
  TIER_UNIQUE_HEADER,
  type HostTier,
  type TieredTransportParts,
} from './transports/tiered/tiered.transport.js';
export type { TieredUplinkOptions } from './transports/tiered/tiered.options.js';

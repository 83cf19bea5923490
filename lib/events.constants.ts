import { REQUEST } from '@nestjs/core';

/** Injection token of the resolved {@link EventsModuleOptions}. @publicApi */
export const EVENTS_MODULE_OPTIONS: unique symbol = Symbol('nest-herald:EVENTS_MODULE_OPTIONS');

/** Injection token of the app's {@link EventBus} (one per app instance). @publicApi */
export const EVENT_BUS: unique symbol = Symbol('nest-herald:EVENT_BUS');

/** Metadata key of `@OnEvent` (an array on the method, so the decorator stacks). @publicApi */
export const EVENT_HANDLER_METADATA = 'nest-herald:event-handler';

/**
 * Injects the {@link HeraldEvent} being handled into request-scoped and
 * durable providers (`@Inject(EVENT_PAYLOAD) event: HeraldEvent`). It is
 * Nest's `REQUEST` token: an event is the request of its own DI context, so a
 * `ContextIdStrategy` receives the event too.
 * @publicApi
 */
export const EVENT_PAYLOAD = REQUEST;

/** The `ExecutionContext.getType()` of event handlers, for guards, interceptors and filters. @publicApi */
export const HERALD_CONTEXT_TYPE = 'herald';

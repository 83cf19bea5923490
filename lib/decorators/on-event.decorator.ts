import { patternsOf } from '../bus/event-bus.registry.js';
import { EVENT_HANDLER_METADATA } from '../events.constants.js';
import type { OnEventMetadata } from './on-event-metadata.interface.js';

/** The `@OnEvent` factory, with `.KEY` for composing decorators. @publicApi */
export interface OnEventDecorator {
  (source?: string, ...events: string[]): MethodDecorator;
  /** The metadata key: an array of {@link OnEventMetadata} on the method. */
  readonly KEY: string;
}

/**
 * Makes a provider or controller method an event handler, registered at
 * `onApplicationBootstrap` like `register(handler, source?, ...events)`:
 *
 * - `@OnEvent()` every event; `@OnEvent('orders')` every event of `orders`;
 * - `@OnEvent('orders', 'created', 'paid')` those events of `orders`;
 * - `@OnEvent('*', 'created')` `created` from any source.
 *
 * Stackable: the method is registered once under every pattern, so an event
 * matching several of them runs it once. Bad names throw `TypeError` here,
 * when the class is defined.
 * @publicApi
 */
export const OnEvent: OnEventDecorator = Object.assign(
  (source?: string, ...events: string[]): MethodDecorator => {
    patternsOf(source, events);
    // slice/concat, not spread: exact-size arrays (10,000 handlers' metadata stays small).
    const entry: OnEventMetadata = { source, events: events.slice() };
    return (_target, _key, descriptor) => {
      const method: unknown = descriptor.value;
      if (typeof method !== 'function') {
        throw new TypeError('@OnEvent() decorates methods only');
      }
      const previous = (Reflect.getMetadata(EVENT_HANDLER_METADATA, method) ??
        []) as OnEventMetadata[];
      Reflect.defineMetadata(EVENT_HANDLER_METADATA, previous.concat([entry]), method);
      return descriptor;
    };
  },
  { KEY: EVENT_HANDLER_METADATA },
);

import { patternsOf, resolveHandlerOptions, splitHandlerArgs } from '../bus/event-bus.registry.js';
import { describeValue } from '../common/options.validation.js';
import { EVENT_HANDLER_METADATA } from '../events.constants.js';
import type { OnEventMetadata, OnEventOptions } from './on-event-metadata.interface.js';

/** The `@OnEvent` factory, with `.KEY` for composing decorators. @publicApi */
export interface OnEventDecorator {
  (source?: string, ...events: (string | OnEventOptions)[]): MethodDecorator;
  /** The metadata key: an array of {@link OnEventMetadata} on the method. */
  readonly KEY: string;
}

/** `'a', 'b'` for messages. */
function describeArgs(args: readonly unknown[]): string {
  return args
    .map(arg =>
      typeof arg === 'string'
        ? `'${arg}'`
        : typeof arg === 'symbol'
          ? String(arg)
          : JSON.stringify(arg),
    )
    .join(', ');
}

/**
 * Makes a provider or controller method an event handler, registered at
 * `onApplicationBootstrap` like `register(handler, source?, ...events)`:
 *
 * - `@OnEvent()` every event; `@OnEvent('orders')` every event of `orders`;
 * - `@OnEvent('orders', 'created', 'paid')` those events of `orders`;
 * - `@OnEvent('*', 'created')` `created` from any source;
 * - with `EventsModule.forRoot({ delimiter: '.' })`, event-emitter's names:
 *   `@OnEvent('orders.created')`, `@OnEvent('orders.*')`, `@OnEvent('*.created')`.
 *
 * A trailing options object: `{ prepend: true }` runs it before the
 * handlers registered earlier; `{ timeoutMs }` is its own
 * `handlerTimeoutMs`. Unknown option keys and bad names throw when the
 * class is defined (`InvalidOptionsError` naming `Class.method` and the
 * keys; `TypeError` for a name that is not a non-empty string).
 *
 * Stackable: the method is registered once under every pattern, so an event
 * matching several of them runs it once.
 * @publicApi
 */
export const OnEvent: OnEventDecorator = Object.assign(
  (source?: string, ...rest: (string | OnEventOptions)[]): MethodDecorator => {
    const { events, options } = splitHandlerArgs(rest);
    const names: unknown[] = source === undefined ? events : [source, ...events];
    if (names.some(name => typeof name !== 'string')) {
      throw new TypeError(
        `@OnEvent(${describeArgs([source, ...rest])}): names must be non-empty strings ` +
          '(symbol and array names are event-emitter\'s: write @OnEvent(source, event), see "Coming from @nestjs/event-emitter"); ' +
          'the options object, if any, comes last',
      );
    }
    patternsOf(source, events);
    return (target, key, descriptor) => {
      const method: unknown = descriptor.value;
      if (typeof method !== 'function') {
        throw new TypeError(
          `@OnEvent() decorates methods only (${String(key)} is ${describeValue(method)})`,
        );
      }
      const owner = (typeof target === 'function' ? target : target.constructor) as {
        name?: string;
      };
      const where = `@OnEvent on ${owner?.name ?? 'anonymous'}.${String(key)}`;
      const resolved = options === undefined ? undefined : resolveHandlerOptions(where, options);
      // slice/concat, not spread: exact-size arrays (10,000 handlers' metadata stays small).
      const entry: OnEventMetadata =
        resolved === undefined
          ? { source, events: events.slice() }
          : { source, events: events.slice(), options: resolved };
      const previous = (Reflect.getMetadata(EVENT_HANDLER_METADATA, method) ??
        []) as OnEventMetadata[];
      Reflect.defineMetadata(EVENT_HANDLER_METADATA, previous.concat([entry]), method);
      return descriptor;
    };
  },
  { KEY: EVENT_HANDLER_METADATA },
);

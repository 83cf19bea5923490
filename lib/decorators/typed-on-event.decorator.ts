import type { HeraldEvent } from '../interfaces/envelope.interface.js';
import type {
  EventPattern,
  JsonCatalog,
  PatternData,
  SourcePattern,
} from '../interfaces/event-catalog.interface.js';
import type { OnEventOptions } from './on-event-metadata.interface.js';
import { OnEvent } from './on-event.decorator.js';

/**
 * A method decorator that accepts only a handler whose `data` parameter
 * can take `D` (its `event` parameter, `HeraldEvent<D>`).
 * @publicApi
 */
export type TypedHandlerDecorator<D> = <
  H extends (data: D, event: HeraldEvent<D>, ...rest: never[]) => unknown,
>(
  target: object,
  key: string | symbol,
  descriptor: TypedPropertyDescriptor<H>,
) => void;

/**
 * `@OnEvent` checked against a catalog `C`: names must be declared (or
 * `'*'`), and the handler's `data` parameter must accept what the pattern
 * can match (a wildcard: the union). Same runtime as `@OnEvent`.
 * @publicApi
 */
export interface TypedOnEvent<C> {
  (): TypedHandlerDecorator<PatternData<C, undefined, []>>;
  <const S extends SourcePattern<C>>(
    source: S,
    options?: OnEventOptions,
  ): TypedHandlerDecorator<PatternData<C, S, []>>;
  <const S extends SourcePattern<C>, const E extends readonly EventPattern<C, S>[]>(
    source: S,
    ...events: E
  ): TypedHandlerDecorator<PatternData<C, S, E>>;
  <const S extends SourcePattern<C>, const E extends readonly EventPattern<C, S>[]>(
    source: S,
    ...eventsAndOptions: [...E, OnEventOptions]
  ): TypedHandlerDecorator<PatternData<C, S, E>>;
}

/**
 * `@OnEvent` for a catalog: `export const OnAppEvent = typedOnEvent<AppEvents>();`
 * then `@OnAppEvent('orders', 'created') onCreated(data: { orderId: number })`.
 * A handler whose parameters use parameter decorators
 * (`@EventData('id', ParseIntPipe) id: number`) is not checked: use
 * `@OnEvent` there.
 * @publicApi
 */
export function typedOnEvent<C extends JsonCatalog<C>>(): TypedOnEvent<C> {
  return OnEvent as unknown as TypedOnEvent<C>;
}

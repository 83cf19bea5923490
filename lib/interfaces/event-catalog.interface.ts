/**
 * Typed events: a catalog the compiler checks. A catalog is a type
 * `{ [source]: { [event]: data } }`:
 *
 *     interface AppEvents {
 *       orders: { created: { orderId: number }; paid: { orderId: number; amount: number } };
 *       cache: { refresh: void };
 *     }
 *
 * `EventPublisher<AppEvents>` then accepts only declared source/event pairs
 * with their data, and `OnEvents<AppEvents>()` gives an `@OnEvent` whose
 * handler's `data` parameter must accept what the pattern can match.
 *
 * Data is JSON-stable: `post` sends `decode(encode(data))`, so a catalog
 * type with a `Date`, `Map`, `Set`, `bigint`, function, symbol or class
 * instance with methods would lie to handlers of transported events. Such a
 * catalog is a compile error where it is used (`EventPublisher<Bad>`).
 */
import type { HeraldEvent } from './envelope.interface.js';

/** A catalog: data types by event, by source. @publicApi */
export type EventCatalog = { readonly [source: string]: { readonly [event: string]: unknown } };

/** What an untyped publisher accepts: any source, any event, any data. @publicApi */
export interface UntypedEvents {
  readonly [source: string]: { readonly [event: string]: unknown };
}

type NotJson =
  | bigint
  | symbol
  | Date
  | RegExp
  | Map<unknown, unknown>
  | Set<unknown>
  | WeakMap<object, unknown>
  | WeakSet<object>
  | Promise<unknown>
  | ((...args: never[]) => unknown);

/**
 * `T` if it survives `JSON.parse(JSON.stringify(value))` unchanged in type;
 * otherwise `T` with `never` where it would not (a compile error where
 * `T` must extend it). `void`/`undefined` stand for "no data".
 * @publicApi
 */
export type JsonStable<T> = unknown extends T
  ? T
  : T extends string | number | boolean | null | undefined | void
    ? T
    : T extends NotJson
      ? never
      : T extends readonly unknown[]
        ? { [K in keyof T]: JsonStable<T[K]> }
        : T extends object
          ? { [K in keyof T]: JsonStable<T[K]> }
          : never;

/** The constraint every catalog meets: JSON-stable data everywhere. @publicApi */
export type JsonCatalog<C> = {
  readonly [S in keyof C]: { readonly [E in keyof C[S]]: JsonStable<C[S][E]> };
};

/** True for {@link UntypedEvents} (any string is a source). */
export type IsUntyped<C> = string extends keyof C ? true : false;

/** The sources of a catalog. @publicApi */
export type SourceOf<C> = keyof C & string;

/** The events of one source. @publicApi */
export type EventOf<C, S extends SourceOf<C>> = keyof C[S] & string;

/** The data of one source/event. @publicApi */
export type DataOf<C, S extends SourceOf<C>, E extends EventOf<C, S>> = C[S][E];

/** Every event name of any source. */
type AnyEvent<C> = { [S in SourceOf<C>]: EventOf<C, S> }[SourceOf<C>];

/** The data of every event of `S`. */
type DataOfSource<C, S extends SourceOf<C>> = C[S][EventOf<C, S>];

/** The data of event `E` of any source that has it. */
type DataOfEvent<C, E extends string> = {
  [S in SourceOf<C>]: E extends EventOf<C, S> ? C[S][E] : never;
}[SourceOf<C>];

/**
 * The data a handler of a pattern can receive: one pair's, or, for a
 * wildcard, the union of what it can match. @publicApi
 */
export type PatternData<C, S, E extends readonly string[]> = S extends undefined
  ? { [K in SourceOf<C>]: DataOfSource<C, K> }[SourceOf<C>]
  : S extends '*'
    ? E extends readonly []
      ? { [K in SourceOf<C>]: DataOfSource<C, K> }[SourceOf<C>]
      : DataOfEvent<C, E[number]>
    : S extends SourceOf<C>
      ? E extends readonly []
        ? DataOfSource<C, S>
        : '*' extends E[number]
          ? DataOfSource<C, S>
          : C[S][E[number] & EventOf<C, S>]
      : never;

/** Names a pattern may use: declared sources or `'*'`. @publicApi */
export type SourcePattern<C> = SourceOf<C> | '*';

/** Events a pattern of source `S` may name. @publicApi */
export type EventPattern<C, S> =
  S extends SourceOf<C> ? EventOf<C, S> | '*' : S extends '*' ? AnyEvent<C> : never;

/** A handler of a catalog's pattern. @publicApi */
export type CatalogHandler<D> = (data: D, event: HeraldEvent<D>) => unknown;

/**
 * The arguments after `(source, event)`: data required unless the catalog
 * says `void`/`undefined` (or the publisher is untyped), then options.
 */
export type DataArgs<D, O> = [D] extends [void | undefined]
  ? [data?: D, options?: O]
  : unknown extends D
    ? [data?: D, options?: O]
    : [data: D, options?: O];

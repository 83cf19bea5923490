/**
 * Typed microservice clients (issue 27 point 4): catalogs of what a
 * {@link PgNotifyClient} / {@link RedisStreamsClient} emits and sends, keyed
 * by string pattern (`'orders.created'`, or a template such as
 * `` `${string}.created` ``):
 *
 *     interface OrderEvents { 'orders.created': { orderId: number } }
 *     interface OrderMessages { 'orders.total': { data: { orderId: number }; reply: number } }
 *     const client = new RedisStreamsClient<OrderEvents, OrderMessages>({ url });
 *     client.emit('orders.created', { orderId: 1 });      // checked
 *     client.send('orders.total', { orderId: 1 });        // Observable<number>
 *
 * Without type arguments a client is untyped, as Nest's `ClientProxy`
 * (any pattern, object patterns included; `send` answers `any` unless told).
 * Data and replies travel as JSON: catalog types are JSON-stable (a `Date`,
 * `Map`, `bigint`... is a compile error where the catalog is used).
 */
import type { IsUntyped, JsonStable } from '../interfaces/event-catalog.interface.js';
import type { HeraldRecord } from './microservice.interface.js';

/** What an untyped client emits: any pattern, any data. @publicApi */
export interface UntypedClientEvents {
  readonly [pattern: string]: unknown;
}

/** One request pattern's types: the data sent and the reply expected. @publicApi */
export interface MessageTypes<Data = unknown, Reply = unknown> {
  readonly data: Data;
  readonly reply: Reply;
}

/** What an untyped client sends: any pattern, any data, any reply. @publicApi */
export interface UntypedClientMessages {
  readonly [pattern: string]: MessageTypes;
}

/** The constraint of an events catalog: JSON-stable data by pattern. @publicApi */
export type ClientEventCatalog<E> = { readonly [P in keyof E]: JsonStable<E[P]> };

/** The constraint of a messages catalog: `{ data, reply }`, both JSON-stable, by pattern. @publicApi */
export type ClientMessageCatalog<M> = {
  readonly [P in keyof M]: M[P] extends { readonly data: infer D; readonly reply: infer R }
    ? { readonly data: JsonStable<D>; readonly reply: JsonStable<R> }
    : MessageTypes;
};

/** The patterns a catalog declares. @publicApi */
export type ClientPattern<C> = keyof C & string;

/** Data as `emit`/`send` take it: the value, or a {@link HeraldRecord} of it. @publicApi */
export type ClientData<D> = D | HeraldRecord<D>;

/** The pattern parameter of the untyped overload: `never` once a catalog is given. */
export type UntypedPattern<C> = IsUntyped<C> extends true ? unknown : never;

/** The data of one request pattern. @publicApi */
export type RequestData<M, P extends keyof M> = M[P] extends { readonly data: infer D } ? D : never;

/** The reply of one request pattern. @publicApi */
export type ReplyOf<M, P extends keyof M> = M[P] extends { readonly reply: infer R } ? R : never;

// Type tests of typed microservice clients (issue 27 point 4), compiled by
// test/unit/types.spec.ts: every `@ts-expect-error` must be an error, so a
// check that is lost fails.
import { ClientProxy } from '@nestjs/microservices';
import type { Observable } from 'rxjs';
import { HeraldRecord, PgNotifyClient } from '../../lib/pg/microservice/index.js';
import { RedisStreamsClient } from '../../lib/redis/microservice/index.js';

interface OrderEvents {
  'orders.created': { orderId: number; lines: { sku: string }[] };
  'orders.cancelled': { orderId: number; reason?: string };
}
interface OrderMessages {
  'orders.total': { data: { orderId: number }; reply: number };
  'orders.find': { data: { orderId: number }; reply: { orderId: number; paid: boolean } | null };
}

declare const pg: PgNotifyClient<OrderEvents, OrderMessages>;
declare const redis: RedisStreamsClient<OrderEvents, OrderMessages>;

// emit: declared patterns with their data, or a HeraldRecord of it.
const emitted: Observable<void> = pg.emit('orders.created', { orderId: 1, lines: [] });
void emitted;
redis.emit('orders.cancelled', { orderId: 1 });
redis.emit('orders.cancelled', new HeraldRecord({ orderId: 1 }, { metadata: { a: 'b' } }));
// @ts-expect-error undeclared pattern
pg.emit('orders.shipped', { orderId: 1 });
// @ts-expect-error wrong data
pg.emit('orders.created', { orderId: '1', lines: [] });
// @ts-expect-error missing field
redis.emit('orders.created', { orderId: 1 });
// @ts-expect-error a HeraldRecord of the wrong data
redis.emit('orders.cancelled', new HeraldRecord({ orderId: 'x' }));
// @ts-expect-error object patterns are for untyped clients
pg.emit({ cmd: 'orders.created' }, { orderId: 1, lines: [] });
// @ts-expect-error a request pattern is not an event
redis.emit('orders.total', { orderId: 1 });

// send: declared patterns with their data; the Observable carries the declared reply.
const total: Observable<number> = pg.send('orders.total', { orderId: 1 });
const found: Observable<{ orderId: number; paid: boolean } | null> = redis.send('orders.find', {
  orderId: 1,
});
const timed: Observable<number> = redis.send(
  'orders.total',
  new HeraldRecord({ orderId: 1 }, { timeoutMs: 500 }),
);
void [total, found, timed];
// @ts-expect-error the reply is a number
const wrongReply: Observable<string> = pg.send('orders.total', { orderId: 1 });
void wrongReply;
// @ts-expect-error undeclared request pattern
redis.send('orders.sum', { orderId: 1 });
// @ts-expect-error wrong request data
pg.send('orders.total', { id: 1 });
// @ts-expect-error an event pattern is not a request
pg.send('orders.created', { orderId: 1, lines: [] });

// Typed or not, a client is a ClientProxy (ClientsModule's customClass, @Inject sites).
const proxies: ClientProxy[] = [pg, redis];
void proxies;

// Untyped clients are unchanged: any pattern (object patterns too), any data,
// `send` typed by its type argument or Nest's `any`.
declare const untyped: PgNotifyClient;
untyped.emit('anything', { at: new Date() });
untyped.emit({ cmd: 'x' }, 1);
const sum: Observable<number> = untyped.send<number>({ cmd: 'sum' }, [1, 2]);
const loose: Observable<string> = untyped.send('echo', 'x');
void [sum, loose];

// Only events typed: requests stay untyped.
declare const eventsOnly: RedisStreamsClient<OrderEvents>;
eventsOnly.send('whatever', 1);
// @ts-expect-error events are still checked
eventsOnly.emit('whatever', 1);

// Template patterns: one entry for a family of patterns.
declare const family: RedisStreamsClient<{ [pattern: `${string}.created`]: { id: number } }>;
family.emit('users.created', { id: 1 });
// @ts-expect-error not `<something>.created`
family.emit('users.deleted', { id: 1 });

// Catalogs are JSON-stable: the data goes through JSON.
// @ts-expect-error a Date would arrive as a string
declare const dated: PgNotifyClient<{ 'orders.created': { at: Date } }>;
void dated;
// @ts-expect-error a reply with a bigint cannot be sent back
declare const big: PgNotifyClient<OrderEvents, { 'n.count': { data: number; reply: bigint } }>;
void big;
// @ts-expect-error a request entry needs { data, reply }
declare const shapeless: RedisStreamsClient<OrderEvents, { 'orders.total': number }>;
void shapeless;

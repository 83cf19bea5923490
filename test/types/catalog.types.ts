// Type tests of typed events (issue 27), compiled by test/unit/types.spec.ts:
// every `@ts-expect-error` must be an error, so a check that is lost fails.
import { ParseIntPipe } from '@nestjs/common';
import * as v from 'valibot';
import { z } from 'zod';
import {
  EventData,
  EventPublisher,
  OnEvent,
  typedOnEvent,
  type HeraldEvent,
  type InputCatalog,
  type OutputCatalog,
} from '../../lib/index.js';

interface AppEvents {
  orders: { created: { orderId: number }; paid: { orderId: number; amount: number } };
  refunds: { created: { refundId: string } };
  cache: { refresh: void };
}

declare const events: EventPublisher<AppEvents>;

// post / postLocal: declared pairs with their data.
void events.post('orders', 'created', { orderId: 1 });
void events.post('orders', 'paid', { orderId: 1, amount: 5 }, { key: [1] });
void events.post('cache', 'refresh');
events.postLocal('orders', 'created', { orderId: 1 });
const outcomes: Promise<unknown[]> = events.postLocal('cache', 'refresh', undefined, {
  wait: true,
});
void outcomes;
// @ts-expect-error undeclared source
void events.post('order', 'created', { orderId: 1 });
// @ts-expect-error undeclared event
void events.post('orders', 'shipped', { orderId: 1 });
// @ts-expect-error wrong data
void events.post('orders', 'created', { orderId: '1' });
// @ts-expect-error missing data
void events.post('orders', 'created');
// @ts-expect-error wrong data, postLocal
events.postLocal('orders', 'paid', { orderId: 1 });
// @ts-expect-error dotted names are for untyped publishers
void events.post('orders.created', { orderId: 1 });

// register: the handler's data follows from the pattern.
events.register((data: { orderId: number }) => data.orderId, 'orders', 'created');
events.register((data: { orderId: number }) => data.orderId, 'orders', 'created', 'paid');
events.register((data: { orderId: number }) => data, 'orders', 'created', { prepend: true });
events.register((data: { orderId: number } | { refundId: string }) => data, '*', 'created');
events.register(
  (data: { orderId: number }, event: HeraldEvent<{ orderId: number }>) => event.id,
  'orders',
  'created',
);
// @ts-expect-error a wildcard matches refunds/created too
events.register((data: { orderId: number }) => data, '*', 'created');
// @ts-expect-error orders/* includes paid, whose data has amount; refresh-less but wrong type
events.register((data: { refundId: string }) => data, 'orders');
// @ts-expect-error undeclared event in a pattern
events.register(() => undefined, 'orders', 'shipped');

// The typed @OnEvent.
const OnAppEvent = typedOnEvent<AppEvents>();
export class Handlers {
  @OnAppEvent('orders', 'created')
  created(data: { orderId: number }, event: HeraldEvent<{ orderId: number }>): void {
    void data.orderId;
    void event.id;
  }

  @OnAppEvent('orders', 'created', 'paid', { timeoutMs: 100 })
  both(data: { orderId: number }): void {
    void data;
  }

  @OnAppEvent('*', 'created')
  anyCreated(data: { orderId: number } | { refundId: string }): void {
    void data;
  }

  @OnAppEvent('cache', 'refresh')
  refresh(): void {}

  // @ts-expect-error the data of orders/created has no amount
  @OnAppEvent('orders', 'created')
  wrong(data: { amount: number }): void {
    void data;
  }

  // @ts-expect-error refunds/created is matched by '*' too
  @OnAppEvent('*', 'created')
  tooNarrow(data: { orderId: number }): void {
    void data;
  }

  // Parameter decorators: the untyped @OnEvent, exempt from the data check.
  @OnEvent('orders', 'created')
  piped(@EventData('orderId', ParseIntPipe) orderId: number): void {
    void orderId;
  }
}
// @ts-expect-error undeclared event
typedOnEvent<AppEvents>()('orders', 'shipped');

// Data is JSON-stable: a Date, a Map, a bigint or a function in a catalog is an error.
interface WithDate {
  orders: { created: { at: Date } };
}
interface WithMap {
  orders: { created: { items: Map<string, number> } };
}
interface WithBigint {
  orders: { created: { id: bigint } };
}
interface WithFunction {
  orders: { created: { run: () => void } };
}
// @ts-expect-error Date is not JSON-stable (post turns it into a string)
export type A = EventPublisher<WithDate>;
// @ts-expect-error Map is not JSON-stable
export type B = EventPublisher<WithMap>;
// @ts-expect-error bigint is not JSON-stable
export type C = EventPublisher<WithBigint>;
// @ts-expect-error functions are not JSON-stable
export type D = EventPublisher<WithFunction>;
export type Fine = EventPublisher<{ a: { b: { at: string; n: number[]; o?: { x: null } } } }>;

// Catalogs from schemas: post takes the input type, handlers get the output type.
export const schemas = {
  users: {
    signedUp: z.object({ email: z.string().email(), age: z.coerce.number() }),
    deleted: v.object({ id: v.pipe(v.string(), v.transform(Number)) }),
  },
};
type In = InputCatalog<typeof schemas>;
type Out = OutputCatalog<typeof schemas>;
declare const users: EventPublisher<In>;
void users.post('users', 'deleted', { id: '7' });
// @ts-expect-error the input of deleted is { id: string }
void users.post('users', 'deleted', { id: 7 });
const OnUser = typedOnEvent<Out>();
export class UserHandlers {
  @OnUser('users', 'deleted')
  deleted(data: { id: number }): void {
    void data;
  }
  // @ts-expect-error handlers get the output: id is a number
  @OnUser('users', 'deleted')
  wrong(data: { id: string }): void {
    void data;
  }
}

// Untyped use is unchanged.
declare const untyped: EventPublisher;
void untyped.post('anything', 'goes', { at: new Date() });
void untyped.post('order.created', { id: 1 });
untyped.postLocal('a', 'b');
untyped.register((data: unknown) => data, 'x');

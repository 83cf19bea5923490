// Issue 27 point 3: Standard Schema validation (zod and valibot) before post
// sends, and before handlers run; handlers receive the schema's output.
import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import * as v from 'valibot';
import { z } from 'zod';
import {
  EventPublisher,
  EventValidationError,
  InvalidOptionsError,
  silentLogger,
  typedOnEvent,
  type InputCatalog,
  type OutputCatalog,
} from '../../../lib/index.js';
import { EventsTestingModule, HeraldTestKit } from '../../../lib/testing/index.js';

const taken = new Set(['taken@example.com']);
const schemas = {
  orders: {
    created: z.object({ orderId: z.number().int(), lines: z.array(z.object({ sku: z.string() })) }),
    paid: v.object({ orderId: v.number(), amount: v.pipe(v.string(), v.transform(Number)) }),
  },
  users: {
    // An async check (a lookup), as a real one would be.
    signedUp: z.object({
      email: z.string().refine(async email => !taken.has(email), 'email already taken'),
    }),
  },
};
type In = InputCatalog<typeof schemas>;
type Out = OutputCatalog<typeof schemas>;
const OnApp = typedOnEvent<Out>();

@Injectable()
class Handlers {
  readonly got: unknown[] = [];
  @OnApp('orders', 'paid')
  paid(data: { orderId: number; amount: number }): void {
    this.got.push(data);
  }
  @OnApp('orders', 'created')
  created(data: { orderId: number }): void {
    this.got.push(data);
  }
  @OnApp('users', 'signedUp')
  signedUp(data: { email: string }): void {
    this.got.push(data);
  }
}

const logged: string[] = [];
const logger = {
  log: () => undefined,
  warn: (message: string) => void logged.push(message),
  error: (message: string) => void logged.push(message),
};

async function compile() {
  const moduleRef = await Test.createTestingModule({
    imports: [EventsTestingModule.forRoot({ logger, schemas })],
    providers: [Handlers],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  return {
    app,
    kit: app.get(HeraldTestKit),
    events: app.get<EventPublisher<In>>(EventPublisher),
    handlers: app.get(Handlers),
  };
}

describe('schemas', () => {
  it('post refuses invalid data before sending, naming the path', async () => {
    const { app, kit, events, handlers } = await compile();
    const error = await events
      .post('orders', 'created', { orderId: 1.5, lines: [{ sku: 3 as unknown as string }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EventValidationError);
    expect((error as EventValidationError).path).toBe('data.orderId');
    expect((error as Error).message).toMatch(
      /^orders\/created data is invalid: data\.orderId: .+; data\.lines\[0\]\.sku: /,
    );
    await kit.whenIdle();
    expect(kit.posted).toEqual([]);
    expect(handlers.got).toEqual([]);
    await app.close();
  });

  it("handlers receive the schema's output; post sends the input (valibot transform)", async () => {
    const { app, kit, events, handlers } = await compile();
    await events.post('orders', 'paid', { orderId: 1, amount: '12.5' });
    await kit.whenIdle();
    kit.expectPosted('orders', 'paid', { amount: '12.5' });
    expect(handlers.got).toEqual([{ orderId: 1, amount: 12.5 }]);
    events.postLocal('orders', 'paid', { orderId: 2, amount: '1' });
    await kit.whenIdle();
    expect(handlers.got[1]).toEqual({ orderId: 2, amount: 1 });
    await app.close();
  });

  it('async validators: post waits for them', async () => {
    const { app, kit, events, handlers } = await compile();
    await expect(events.post('users', 'signedUp', { email: 'taken@example.com' })).rejects.toThrow(
      'users/signedUp data is invalid: data.email: email already taken',
    );
    await events.post('users', 'signedUp', { email: 'new@example.com' });
    await kit.whenIdle();
    expect(handlers.got).toEqual([{ email: 'new@example.com' }]);
    await app.close();
  });

  it('an invalid event arriving from another process never reaches a handler: nacked, counted', async () => {
    const { app, kit, events, handlers } = await compile();
    const settled = await kit.deliver(
      'orders',
      'created',
      { orderId: 'x', lines: [] },
      { attempt: 1 },
    );
    expect(settled.outcome).toBe('nack');
    expect((settled as { error: unknown }).error).toBeInstanceOf(EventValidationError);
    expect(handlers.got).toEqual([]);
    // Not a handler failure: no handler ran. Marked undecodable (redis groups dead-letter it at once).
    expect(events.stats().failed).toBe(0);
    expect(events.stats().invalid).toBe(1);
    expect((settled as { error: EventValidationError }).error.undecodable).toBe(true);
    expect(
      logged.some(line =>
        /^bus event-invalid: .*\[source=orders event=created id=\S+ origin=remote-test attempt=1 path=data\.orderId\]$/.test(
          line,
        ),
      ),
    ).toBe(true);
    // valibot quotes the value in its messages: they stay in error.issues, out of the logs.
    await kit.deliver('orders', 'paid', { orderId: 'secret-id', amount: '1' });
    expect(logged.join('\n')).not.toContain('secret');
    expect(logged.join('\n')).toMatch(
      /bus event-invalid: .*source=orders event=paid .*path=data\.orderId\]/,
    );
    const ok = await kit.deliver('orders', 'created', { orderId: 3, lines: [] });
    expect(ok).toEqual({ outcome: 'ack' });
    expect(handlers.got).toEqual([{ orderId: 3, lines: [] }]);
    handlers.got.splice(0);
    // A handler registered by hand is validated too (by the bus), and unregisters as given.
    const seen: unknown[] = [];
    const handler = (data: unknown): void => void seen.push(data);
    events.register(handler, 'orders', 'paid');
    await kit.deliver('orders', 'paid', { orderId: 4, amount: '2' });
    expect(seen).toEqual([{ orderId: 4, amount: 2 }]);
    expect(handlers.got).toEqual([{ orderId: 4, amount: 2 }]);
    expect(events.unregister(handler)).toBe(true);
    await app.close();
  });

  it('refuses schemas that are not Standard Schemas, naming the key', async () => {
    const error = await Test.createTestingModule({
      imports: [
        EventsTestingModule.forRoot({
          logger: silentLogger,
          schemas: { orders: { created: { parse() {} } as never } },
        }),
      ],
    })
      .compile()
      .then(m => m.createNestApplication({ logger: false }).init())
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect((error as Error).message).toContain('schemas.orders.created');
  });
});

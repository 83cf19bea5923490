// Issue 17 point 5: nest-herald/testing's EventsTestingModule and HeraldTestKit, under Jest
// (test/vitest/testing-kit.vitest.ts runs the same kind of test under Vitest).
import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { EventPublisher, OnEvent, silentLogger, type HeraldEvent } from '../../../lib/index.js';
import {
  EventExpectationError,
  EventsTestingModule,
  HeraldTestKit,
} from '../../../lib/testing/index.js';

@Injectable()
class OrdersService {
  constructor(private readonly events: EventPublisher) {}
  async place(orderId: number, amount: number): Promise<void> {
    await this.events.post('orders', 'created', { orderId, amount }, { key: [orderId] });
  }
}

@Injectable()
class Mailer {
  readonly sent: string[] = [];
  readonly seen: {
    attempt: number;
    headers: Readonly<Record<string, string>>;
    key?: readonly bigint[];
    local: boolean;
  }[] = [];

  @OnEvent('orders', 'created')
  onCreated(data: { orderId: number }, event: HeraldEvent): void {
    this.seen.push({
      attempt: event.attempt,
      headers: event.headers,
      key: event.key,
      local: event.local,
    });
    if (data.orderId < 0) throw new Error(`bad order ${data.orderId}`);
    this.sent.push(`order ${data.orderId}`);
  }
}

async function compile(options: Parameters<typeof EventsTestingModule.forRoot>[0] = {}) {
  const moduleRef = await Test.createTestingModule({
    imports: [EventsTestingModule.forRoot({ logger: silentLogger, ...options })],
    providers: [OrdersService, Mailer],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  return app;
}

describe('EventsTestingModule + HeraldTestKit', () => {
  it('records what a service posts, and the handler reacts', async () => {
    const app = await compile();
    const kit = app.get(HeraldTestKit);
    await app.get(OrdersService).place(7, 30);
    await kit.whenIdle();
    const posted = kit.expectPosted('orders', 'created', { orderId: 7 });
    expect(posted.key).toEqual([7n]);
    kit.expectPosted('orders', 'created', expect.objectContaining({ amount: expect.any(Number) }));
    kit.expectPosted<{ amount: number }>('orders', 'created', data => data.amount === 30);
    expect(app.get(Mailer).sent).toEqual(['order 7']);
    kit.expectNotPosted('orders', 'paid');
    await app.close();
  });

  it('fails with what was posted', async () => {
    const app = await compile();
    const kit = app.get(HeraldTestKit);
    await app.get(OrdersService).place(1, 5);
    expect(() => kit.expectPosted('orders', 'created', { orderId: 2 })).toThrow(
      EventExpectationError,
    );
    expect(() => kit.expectPosted('orders', 'paid')).toThrow(
      'expected a post of orders/paid; posted: orders/created {"orderId":1,"amount":5}',
    );
    expect(() => kit.expectNotPosted('orders', 'created')).toThrow(
      /expected no post of orders\/created/,
    );
    kit.clear();
    expect(kit.posted).toEqual([]);
    expect(() => kit.expectPosted('orders', 'created')).toThrow('posted: nothing');
    await app.close();
  });

  it('delivers a fake remote event with attempt, headers and key; a failing handler nacks it', async () => {
    const app = await compile();
    const kit = app.get(HeraldTestKit);
    const mailer = app.get(Mailer);
    const ok = await kit.deliver(
      'orders',
      'created',
      { orderId: 3 },
      {
        attempt: 2,
        headers: { traceparent: '00-abc-def-01' },
        key: [3],
      },
    );
    expect(ok).toEqual({ outcome: 'ack' });
    expect(mailer.seen).toEqual([
      { attempt: 2, headers: { traceparent: '00-abc-def-01' }, key: [3n], local: false },
    ]);
    const failed = await kit.deliver('orders', 'created', { orderId: -1 });
    expect(failed.outcome).toBe('nack');
    expect((failed as { error: Error }).error.message).toBe('bad order -1');
    // A delivery is not a post of this app.
    expect(kit.posted).toEqual([]);
    await app.close();
  });

  it('loopback: false records posts without running handlers; unique is honoured', async () => {
    const app = await compile({ loopback: false });
    const kit = app.get(HeraldTestKit);
    await app.get(OrdersService).place(9, 1);
    await kit.whenIdle();
    kit.expectPosted('orders', 'created', { orderId: 9 });
    expect(app.get(Mailer).sent).toEqual([]);
    await app.close();

    const looping = await compile();
    const events = looping.get(EventPublisher);
    await events.post('orders', 'created', { orderId: 1 }, { unique: 'once' });
    await events.post('orders', 'created', { orderId: 1 }, { unique: 'once' });
    await looping.get(HeraldTestKit).whenIdle();
    expect(looping.get(HeraldTestKit).posted).toHaveLength(2);
    expect(looping.get(Mailer).sent).toEqual(['order 1']);
    await looping.close();
  });
});

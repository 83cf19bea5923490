// Issue 17 point 1: event-emitter-style names with `delimiter`, and the
// patterns that can never match refused at bootstrap, naming Class.method.
import { Injectable, Module, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  EventPublisher,
  EventsModule,
  InvalidEventError,
  InvalidOptionsError,
  OnEvent,
  silentLogger,
  type EventsModuleOptions,
  type HeraldEvent,
} from '../../../lib/index.js';

const seen: string[] = [];

@Injectable()
class Dotted {
  @OnEvent('order.created')
  created(_data: unknown, event: HeraldEvent): void {
    seen.push(`created ${event.source}/${event.event}`);
  }

  @OnEvent('order.*')
  anyOrder(_data: unknown, event: HeraldEvent): void {
    seen.push(`order.* ${event.source}/${event.event}`);
  }

  @OnEvent('*.created')
  anyCreated(_data: unknown, event: HeraldEvent): void {
    seen.push(`*.created ${event.source}/${event.event}`);
  }

  @OnEvent('order.item.added', 'order.paid')
  two(_data: unknown, event: HeraldEvent): void {
    seen.push(`two ${event.source}/${event.event}`);
  }

  @OnEvent('user', 'created')
  plain(_data: unknown, event: HeraldEvent): void {
    seen.push(`plain ${event.source}/${event.event}`);
  }
}

async function start(providers: Type[], options: EventsModuleOptions = {}) {
  @Module({
    imports: [EventsModule.forRoot({ logger: silentLogger, ...options })],
    providers,
  })
  class AppModule {}
  const app = await NestFactory.createApplicationContext(AppModule, {
    logger: false,
    abortOnError: false,
  });
  return app;
}

async function bootstrapError(
  providers: Type[],
  options: EventsModuleOptions = {},
): Promise<Error> {
  try {
    const app = await start(providers, options);
    await app.close();
  } catch (error) {
    return error as Error;
  }
  throw new Error('bootstrap succeeded');
}

describe('delimiter: event-emitter names mapped onto (source, event)', () => {
  afterEach(() => seen.splice(0));

  it('maps @OnEvent, post and postLocal names at the first delimiter', async () => {
    const app = await start([Dotted], { delimiter: '.' });
    const events = app.get(EventPublisher);
    await events.post('order.created', { id: 1 });
    events.postLocal('user.created', { id: 2 });
    await events.post('order.item.added');
    await events.post('order', 'paid'); // the (source, event) form still works
    await events.whenIdle();
    expect(seen).toEqual([
      'created order/created',
      'order.* order/created',
      '*.created order/created',
      '*.created user/created',
      'plain user/created',
      'order.* order/item.added',
      'two order/item.added',
      'order.* order/paid',
      'two order/paid',
    ]);
    await app.close();
  });

  it('maps register and unregister names too, with a delimiter of any length', async () => {
    const app = await start([], { delimiter: '::' });
    const events = app.get(EventPublisher);
    const got: string[] = [];
    const handler = (_data: unknown, event: HeraldEvent): void => {
      got.push(`${event.source}/${event.event}`);
    };
    const dispose = events.register(handler, 'billing::*');
    await events.post('billing::charged', 1);
    await events.whenIdle();
    expect(got).toEqual(['billing/charged']);
    expect(dispose()).toBe(true);
    events.register(handler, '*::refunded');
    events.postLocal('billing::refunded');
    await events.whenIdle();
    expect(events.unregister(handler, '*::refunded')).toBe(true);
    events.postLocal('billing::refunded');
    await events.whenIdle();
    expect(got).toEqual(['billing/charged', 'billing/refunded']);
    await app.close();
  });

  it('refuses a bad delimiter at start', async () => {
    const error = await bootstrapError([], { delimiter: '*' });
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect(error.message).toContain('delimiter');
  });
});

describe('a pattern that can never match fails the bootstrap, naming Class.method', () => {
  it('a lone dotted name without a delimiter', async () => {
    @Injectable()
    class Habit {
      @OnEvent('order.created')
      onCreated(): void {}
    }
    const error = await bootstrapError([Habit]);
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect(error.message).toContain('@OnEvent on Habit.onCreated');
    expect(error.message).toContain("@OnEvent('order', 'created')");
    expect(error.message).toContain("delimiter: '.'");
  });

  it('a source really named with a dot is written with "*" and works', async () => {
    const got: string[] = [];
    @Injectable()
    class DottedSource {
      @OnEvent('v1.orders', '*')
      any(_data: unknown, event: HeraldEvent): void {
        got.push(event.event);
      }
    }
    const app = await start([DottedSource]);
    await app.get(EventPublisher).post('v1.orders', 'created');
    await app.get(EventPublisher).whenIdle();
    expect(got).toEqual(['created']);
    await app.close();
  });

  it.each([
    ['order*', []],
    ['orders', ['created*']],
    ['*order', ['x']],
  ])('a partial glob: @OnEvent(%p, ...%p)', async (source, events) => {
    @Injectable()
    class Glob {
      @OnEvent(source, ...events)
      handle(): void {}
    }
    const error = await bootstrapError([Glob]);
    expect(error).toBeInstanceOf(InvalidOptionsError);
    expect(error.message).toContain('@OnEvent on Glob.handle: this pattern can never match');
  });

  it('with a delimiter: a partial glob inside a dotted name, and dotted and plain names mixed', async () => {
    @Injectable()
    class Inner {
      @OnEvent('order.*.added')
      handle(): void {}
    }
    const inner = await bootstrapError([Inner], { delimiter: '.' });
    expect(inner.message).toContain('@OnEvent on Inner.handle');
    @Injectable()
    class Mixed {
      @OnEvent('order.created', 'paid')
      handle(): void {}
    }
    const mixed = await bootstrapError([Mixed], { delimiter: '.' });
    expect(mixed.message).toContain('@OnEvent on Mixed.handle');
    expect(mixed.message).toContain("'paid' has no '.'");
  });

  it('register refuses the same patterns, and post of a dotted name without delimiter says what to do', async () => {
    const app = await start([]);
    const events = app.get(EventPublisher);
    expect(() => events.register(function audit() {}, 'order.created')).toThrow(
      /register\(audit\): this pattern can never match/,
    );
    await expect(events.post('order.created', { id: 1 })).rejects.toThrow(InvalidEventError);
    await expect(events.post('order.created', { id: 1 })).rejects.toThrow(/delimiter: '\.'/);
    expect(() => events.postLocal('order.created', { id: 1 })).toThrow(/delimiter: '\.'/);
    await app.close();
  });
});

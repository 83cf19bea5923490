import {
  Controller,
  Injectable,
  Module,
  Scope,
  type DynamicModule,
  type INestApplicationContext,
} from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import {
  EVENTS_MODULE_OPTIONS,
  EventPublisher,
  EventsModule,
  HandlerTimeoutError,
  InvalidOptionsError,
  LocalTransport,
  OnEvent,
  silentLogger,
  type EventsModuleOptions,
  type HeraldEvent,
} from '../../../lib/index.js';
import { waitFor } from '../../helpers/wait-for.js';

const seen: string[] = [];
const record = (who: string, event: HeraldEvent): void =>
  void seen.push(`${who}:${event.source}/${event.event}`);

@Controller()
class OrdersController {
  @OnEvent('orders', 'created')
  created(_data: unknown, event: HeraldEvent): void {
    record('controller', event);
  }
}

@Injectable()
class OrdersService {
  @OnEvent('orders', 'created')
  created(_data: unknown, event: HeraldEvent): void {
    record('provider', event);
  }
}

@Injectable()
class Levels {
  @OnEvent()
  all(_d: unknown, e: HeraldEvent): void {
    record('all', e);
  }
  @OnEvent('s1')
  source(_d: unknown, e: HeraldEvent): void {
    record('source', e);
  }
  @OnEvent('s1', 'e1', 'e2')
  exact(_d: unknown, e: HeraldEvent): void {
    record('exact', e);
  }
  @OnEvent('*', 'e1')
  anySource(_d: unknown, e: HeraldEvent): void {
    record('anySource', e);
  }
}

@Injectable()
class Stacked {
  ids: string[] = [];
  @OnEvent('users', 'created')
  @OnEvent('users')
  @OnEvent('*', 'created')
  onUser(_d: unknown, e: HeraldEvent): void {
    this.ids.push(`${e.event}:${e.id}`);
  }
}

/** A custom decorator composed from `OnEvent` and its `.KEY`. */
const OnAudit = (): MethodDecorator => OnEvent('audit');

@Injectable()
class Aliased {
  count = 0;
  @OnAudit()
  onAudit(): void {
    this.count++;
  }
}

@Module({
  imports: [EventsModule.forRoot({ logger: silentLogger })],
  controllers: [OrdersController],
  providers: [
    OrdersService,
    Levels,
    Stacked,
    Aliased,
    { provide: 'AUDIT_ALIAS', useExisting: Aliased },
  ],
})
class AppModule {}

describe('EventsModule discovery (e2e)', () => {
  let app: INestApplicationContext;
  let publisher: EventPublisher;

  beforeAll(async () => {
    app = await Test.createTestingModule({ imports: [AppModule] }).compile();
    app.useLogger(false);
    await app.init();
    publisher = app.get(EventPublisher);
    await publisher.waitUntilReady();
  });

  afterAll(() => app.close());
  beforeEach(() => void seen.splice(0));

  it('delivers a post to controller and provider handlers', async () => {
    await publisher.post('orders', 'created', { id: 1 });
    await waitFor(() => seen.filter(s => s.endsWith('orders/created')).length >= 3);
    expect(seen).toEqual(
      expect.arrayContaining(['controller:orders/created', 'provider:orders/created']),
    );
  });

  it('matches every wildcard level', async () => {
    for (const [source, event] of [
      ['s1', 'e1'],
      ['s1', 'e2'],
      ['s1', 'e3'],
      ['s2', 'e1'],
      ['s2', 'e9'],
    ]) {
      await publisher.post(source, event, null);
    }
    await waitFor(() => seen.filter(s => s.startsWith('all:')).length === 5);
    const of = (who: string): string[] =>
      seen.filter(s => s.startsWith(`${who}:`)).map(s => s.slice(who.length + 1));
    expect(of('all')).toEqual(['s1/e1', 's1/e2', 's1/e3', 's2/e1', 's2/e9']);
    expect(of('source')).toEqual(['s1/e1', 's1/e2', 's1/e3']);
    expect(of('exact')).toEqual(['s1/e1', 's1/e2']);
    expect(of('anySource')).toEqual(['s1/e1', 's2/e1']);
  });

  it('runs a stacked method for each of its patterns, and once for an event matching several', async () => {
    const stacked = app.get(Stacked);
    stacked.ids.splice(0);
    const created = await publisher.post('users', 'created', {});
    const deleted = await publisher.post('users', 'deleted', {});
    const other = await publisher.post('teams', 'created', {});
    await waitFor(() => stacked.ids.length >= 3);
    await publisher.post('marker', 'm', 1);
    await waitFor(() => seen.includes('all:marker/m'));
    expect(stacked.ids).toEqual([
      `created:${created.id}`,
      `deleted:${deleted.id}`,
      `created:${other.id}`,
    ]);
  });

  it('does not register a useExisting alias twice', async () => {
    const aliased = app.get(Aliased);
    aliased.count = 0;
    await publisher.post('audit', 'x', 1);
    await publisher.post('marker', 'm', 1);
    await waitFor(() => seen.includes('all:marker/m'));
    expect(aliased.count).toBe(1);
    expect(app.get('AUDIT_ALIAS')).toBe(aliased);
  });

  it('registers each decorated method once on the bus', () => {
    // OrdersController, OrdersService, 4 Levels, Stacked, Aliased
    expect(publisher.stats().handlers).toBe(8);
  });

  it('exposes .KEY for composing decorators', () => {
    expect(OnEvent.KEY).toBe('nest-herald:event-handler');
    expect(Reflect.getMetadata(OnEvent.KEY, Stacked.prototype.onUser)).toHaveLength(3);
  });

  it('rejects bad patterns and non-methods when the class is defined', () => {
    expect(() => OnEvent('')).toThrow(TypeError);
    expect(() => OnEvent('orders', '')).toThrow(TypeError);
    expect(() => {
      class Getter {
        @OnEvent('orders')
        get value(): number {
          return 1;
        }
      }
      return Getter;
    }).toThrow('@OnEvent() decorates methods only (value is undefined)');
  });
});

describe('EventsModule per app instance (e2e)', () => {
  @Injectable()
  class Counter {
    count = 0;
    @OnEvent('ping')
    onPing(): void {
      this.count++;
    }
  }

  @Module({ imports: [EventsModule.forRoot({ logger: silentLogger })], providers: [Counter] })
  class PingModule {}

  it('gives two apps in one process separate buses', async () => {
    const a = await NestFactory.createApplicationContext(PingModule, { logger: false });
    const b = await NestFactory.createApplicationContext(PingModule, { logger: false });
    try {
      await a.get(EventPublisher).post('ping', 'x', 1);
      await a.get(EventPublisher).post('ping', 'x', 2);
      await b.get(EventPublisher).post('ping', 'x', 3);
      await waitFor(() => a.get(Counter).count === 2 && b.get(Counter).count === 1);
      await a.get(EventPublisher).post('other', 'x', 1);
      await waitFor(() => a.get(EventPublisher).stats().unhandled === 1);
      expect(b.get(Counter).count).toBe(1);
      expect(a.get(EventPublisher)).not.toBe(b.get(EventPublisher));
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('refuses two EventsModules in one app, which would run every handler twice', async () => {
    @Module({ imports: [EventsModule.forRoot({ logger: silentLogger, isGlobal: false })] })
    class FeatureModule {}

    @Module({
      imports: [EventsModule.forRoot({ logger: silentLogger }), FeatureModule],
      providers: [Counter],
    })
    class TwiceModule {}

    await expect(
      NestFactory.createApplicationContext(TwiceModule, { logger: false, abortOnError: false }),
    ).rejects.toThrow(InvalidOptionsError);
  });
});

describe('transient providers (e2e)', () => {
  it('registers each constructed transient instance, never the unconstructed placeholder', async () => {
    const got: string[] = [];
    let made = 0;
    @Injectable({ scope: Scope.TRANSIENT })
    class Transient {
      readonly serial = ++made;
      @OnEvent('transient')
      on(): void {
        got.push(`instance ${this.serial}`);
      }
    }
    @Injectable()
    class ConsumerA {
      constructor(readonly t: Transient) {}
    }
    @Injectable()
    class ConsumerB {
      constructor(readonly t: Transient) {}
    }
    @Module({
      imports: [EventsModule.forRoot({ logger: silentLogger })],
      providers: [Transient, ConsumerA, ConsumerB],
    })
    class TransientModule {}
    const app = await NestFactory.createApplicationContext(TransientModule, { logger: false });
    try {
      await app.get(EventPublisher).post('transient', 'x', 1);
      await waitFor(() => got.length === made && made >= 2);
      expect(got.every(line => /^instance \d+$/.test(line))).toBe(true);
      expect(new Set(got).size).toBe(made);
    } finally {
      await app.close();
    }
  });
});

describe('EventsModule.forRootAsync (e2e)', () => {
  @Injectable()
  class Slow {
    @OnEvent('slow')
    onSlow(): Promise<void> {
      return new Promise(() => undefined);
    }
  }

  it('takes its options from ConfigService', async () => {
    const failures: unknown[] = [];
    @Module({
      imports: [
        EventsModule.forRootAsync({
          imports: [
            ConfigModule.forRoot({
              ignoreEnvFile: true,
              load: [() => ({ HERALD_HANDLER_TIMEOUT_MS: 30, HERALD_CONCURRENCY: 2 })],
            }),
          ],
          inject: [ConfigService],
          useFactory: (config: ConfigService): EventsModuleOptions => ({
            handlerTimeoutMs: config.getOrThrow<number>('HERALD_HANDLER_TIMEOUT_MS'),
            concurrency: config.getOrThrow<number>('HERALD_CONCURRENCY'),
            shutdownTimeoutMs: 50,
            logger: silentLogger,
            onHandlerError: error => void failures.push(error),
          }),
        }),
      ],
      providers: [Slow],
    })
    class AsyncModule {}

    const app = await NestFactory.createApplicationContext(AsyncModule, { logger: false });
    try {
      expect(app.get<EventsModuleOptions>(EVENTS_MODULE_OPTIONS).concurrency).toBe(2);
      await app.get(EventPublisher).post('slow', 'x', 1);
      await waitFor(() => failures.length === 1);
      expect(failures[0]).toBeInstanceOf(HandlerTimeoutError);
    } finally {
      await app.close();
    }
  });

  it('is global by default and not with isGlobal: false', async () => {
    @Injectable()
    class NeedsPublisher {
      constructor(readonly publisher: EventPublisher) {}
    }
    @Module({ providers: [NeedsPublisher] })
    class FeatureModule {}

    const global = await NestFactory.createApplicationContext(
      {
        module: class Root {},
        imports: [EventsModule.forRoot({ logger: silentLogger }), FeatureModule],
      },
      { logger: false },
    );
    expect(global.get(NeedsPublisher).publisher).toBe(global.get(EventPublisher));
    await global.close();

    await expect(
      NestFactory.createApplicationContext(
        {
          module: class Root2 {},
          imports: [EventsModule.forRoot({ logger: silentLogger, isGlobal: false }), FeatureModule],
        },
        { logger: false, abortOnError: false },
      ),
    ).rejects.toThrow(/EventPublisher/);
  });

  it('refuses bad options with InvalidOptionsError and closes the transport it made', async () => {
    const start = (imports: DynamicModule[]): Promise<INestApplicationContext> =>
      NestFactory.createApplicationContext(
        { module: class Bad {}, imports },
        { logger: false, abortOnError: false },
      );
    for (const options of [{ shutdownTimeoutMs: 0 }, { concurrency: 0 }]) {
      await expect(
        start([EventsModule.forRoot({ ...options, logger: silentLogger })]),
      ).rejects.toThrow(InvalidOptionsError);
    }
    const transport = new LocalTransport();
    const states: string[] = [];
    transport.status$.subscribe(status => void states.push(status.state));
    await expect(
      start([EventsModule.forRoot({ transport, handlerTimeoutMs: -1, logger: silentLogger })]),
    ).rejects.toThrow(InvalidOptionsError);
    expect(states).toContain('closed');
    await expect(
      start([
        EventsModule.forRootAsync({ useFactory: () => null as unknown as EventsModuleOptions }),
      ]),
    ).rejects.toThrow(InvalidOptionsError);
    await expect(
      start([EventsModule.forRoot({ transport: 'nope' as never, logger: silentLogger })]),
    ).rejects.toThrow(/unknown transport 'nope'/);
  });
});

// @nestjs/event-emitter's documented behaviours, for what nest-herald offers
// in their place, written as our own tests (names split into source/event,
// emit -> postLocal, emitAsync -> postLocal(..., { wait: true })).
import {
  Controller,
  Inject,
  Injectable,
  Module,
  Scope,
  SetMetadata,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  EVENT_PAYLOAD,
  EventPublisher,
  EventsModule,
  OnEvent,
  silentLogger,
  type HeraldEvent,
  type OnEventMetadata,
} from '../../../lib/index.js';

/** A custom decorator writing one (non-array) metadata object, as users of event-emitter do. */
const OnInvoice = (event: string): MethodDecorator =>
  SetMetadata(OnEvent.KEY, { source: 'invoice', events: [event] } satisfies OnEventMetadata);

@Injectable()
class Consumers {
  calls: string[] = [];

  @OnInvoice('issued')
  onIssued(): void {
    this.calls.push('custom');
  }

  @OnEvent('errors', 'thrown')
  onThrown(): never {
    this.calls.push('thrower');
    throw new Error('This is a test error');
  }

  @OnEvent('errors', 'thrown')
  afterThrower(): void {
    this.calls.push('after');
  }

  @OnEvent('values', 'asked')
  first(): string {
    return 'first';
  }

  @OnEvent('values', 'asked')
  async second(): Promise<string> {
    await new Promise(resolve => setImmediate(resolve));
    return 'second';
  }
}

@Injectable({ scope: Scope.REQUEST })
class ScopedConsumer {
  constructor(@Inject(EVENT_PAYLOAD) private readonly event: HeraldEvent) {}

  @OnEvent('scoped', 'thrown')
  onThrown(): never {
    throw new Error(`This is a test error (${this.event.event})`);
  }
}

@Controller()
class ReadyController {
  payload: unknown;
  @OnEvent('ready', 'announced')
  onAnnounced(data: unknown): void {
    this.payload = data;
  }
}

@Injectable()
class Announcer implements OnApplicationBootstrap {
  constructor(private readonly events: EventPublisher) {}
  onApplicationBootstrap(): void {
    void this.events.post('ready', 'announced', { hello: 'world' });
  }
}

@Module({
  imports: [EventsModule.forRoot({ logger: silentLogger })],
  controllers: [ReadyController],
  providers: [Consumers, ScopedConsumer, Announcer],
})
class AppModule {}

async function start() {
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
  // The scoped handler's error goes through Nest's ExceptionsHandler, which logs it.
  moduleRef.useLogger(false);
  return moduleRef.init();
}

describe('coming from @nestjs/event-emitter (e2e)', () => {
  it('registers a handler whose custom decorator wrote a single metadata object, and runs it at once', async () => {
    const app = await start();
    try {
      const events = app.get(EventPublisher);
      await events.waitUntilReady();
      events.postLocal('invoice', 'issued');
      // Synchronous handlers of a postLocal run before it returns when nothing else is in flight.
      expect(app.get(Consumers).calls).toEqual(['custom']);
      expect(events.stats().handlers).toBe(7);
    } finally {
      await app.close();
    }
  });

  it('recovers from a throwing handler: the post does not throw and the next handler still runs', async () => {
    const app = await start();
    try {
      const events = app.get(EventPublisher);
      await events.waitUntilReady();
      expect(() => events.postLocal('errors', 'thrown')).not.toThrow();
      await events.whenIdle();
      expect(app.get(Consumers).calls).toEqual(['thrower', 'after']);
      expect(events.stats().failed).toBe(1);
    } finally {
      await app.close();
    }
  });

  it('like emitAsync with suppressErrors: false, wait + rejectOnError rejects with the handler error', async () => {
    const app = await start();
    try {
      const events = app.get(EventPublisher);
      await events.waitUntilReady();
      const error = (await events
        .postLocal('errors', 'thrown', undefined, { wait: true, rejectOnError: true })
        .catch((e: unknown) => e)) as AggregateError;
      expect(error).toBeInstanceOf(AggregateError);
      expect((error.errors[0] as Error).message).toBe('This is a test error');
      const scoped = (await events
        .postLocal('scoped', 'thrown', undefined, { wait: true, rejectOnError: true })
        .catch((e: unknown) => e)) as AggregateError;
      expect((scoped.errors[0] as Error).message).toBe('This is a test error (thrown)');
      expect(scoped.message).toContain('ScopedConsumer.onThrown');
    } finally {
      await app.close();
    }
  });

  it('like emitAsync, wait resolves with the handlers’ results in registration order', async () => {
    const app = await start();
    try {
      const events = app.get(EventPublisher);
      await events.waitUntilReady();
      const outcomes = await events.postLocal('values', 'asked', null, { wait: true });
      expect(outcomes.map(o => (o.status === 'fulfilled' ? o.value : o.reason))).toEqual([
        'first',
        'second',
      ]);
      expect(outcomes.map(o => o.handler)).toEqual(['Consumers.first', 'Consumers.second']);
    } finally {
      await app.close();
    }
  });

  it('waits until ready; an event posted at bootstrap reaches a controller', async () => {
    const app = await start();
    try {
      const events = app.get(EventPublisher);
      await expect(events.waitUntilReady()).resolves.toBeUndefined();
      await events.whenIdle();
      expect(app.get(ReadyController).payload).toEqual({ hello: 'world' });
    } finally {
      await app.close();
    }
  });

  it('refuses metadata under OnEvent.KEY it cannot read, naming the method', async () => {
    @Injectable()
    class Broken {
      @SetMetadata(OnEvent.KEY, { source: 'x', events: [''] })
      onBroken(): void {}
    }
    const moduleRef = await Test.createTestingModule({
      imports: [EventsModule.forRoot({ logger: silentLogger })],
      providers: [Broken],
    }).compile();
    await expect(moduleRef.init()).rejects.toThrow(
      '@OnEvent metadata on Broken.onBroken: events must be non-empty strings',
    );
    await moduleRef.close().catch(() => undefined);
  });
});

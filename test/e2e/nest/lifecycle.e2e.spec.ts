import {
  Injectable,
  Module,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
  type OnModuleInit,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  EventPublisher,
  EventsModule,
  LocalTransport,
  OnEvent,
  TransportClosedError,
  silentLogger,
  type HeraldEvent,
} from '../../../lib/index.js';
import { settleIo, waitFor } from '../../helpers/wait-for.js';
import { CaptureLogger } from './capture-logger.js';

describe('EventsModule lifecycle (e2e)', () => {
  it('delivers events posted from a constructor and from onModuleInit once handlers are registered', async () => {
    const got: string[] = [];

    @Injectable()
    class Early implements OnModuleInit, OnApplicationBootstrap {
      constructor(private readonly publisher: EventPublisher) {
        void publisher.post('boot', 'constructor', 1);
      }
      onModuleInit(): void {
        void this.publisher.post('boot', 'init', 2);
        this.publisher.postLocal('boot', 'local', 3);
      }
      onApplicationBootstrap(): void {
        void this.publisher.post('boot', 'bootstrap', 4);
      }
    }

    @Injectable()
    class Listener {
      @OnEvent('boot')
      onBoot(data: number, event: HeraldEvent): void {
        got.push(`${event.event}:${data}`);
      }
    }

    @Module({ providers: [Early] })
    class EarlyModule {}

    @Module({
      imports: [EventsModule.forRoot({ logger: silentLogger }), EarlyModule],
      providers: [Listener],
    })
    class AppModule {}

    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    try {
      await waitFor(() => got.length === 4);
      expect(got.sort()).toEqual(['bootstrap:4', 'constructor:1', 'init:2', 'local:3']);
    } finally {
      await app.close();
    }
  });

  /**
   * A provider that closes a resource in onModuleDestroy, in the root module
   * (the first module Nest destroys) while EventsModule is global (the last
   * one Nest would destroy on its own).
   */
  function appWithResource(shutdownTimeoutMs: number, logger = new CaptureLogger()) {
    const state = { released: undefined as undefined | (() => void), sawOpen: [] as boolean[] };

    @Injectable()
    class Database implements OnModuleDestroy {
      open = true;
      onModuleDestroy(): void {
        this.open = false;
      }
    }

    @Injectable()
    class Worker {
      constructor(private readonly db: Database) {}
      @OnEvent('work')
      async onWork(): Promise<void> {
        await new Promise<void>(resolve => (state.released = resolve));
        state.sawOpen.push(this.db.open);
      }
    }

    @Module({
      imports: [EventsModule.forRoot({ logger, shutdownTimeoutMs })],
      providers: [Database, Worker],
    })
    class AppModule {}

    return { AppModule, state, logger };
  }

  it('lets a handler running at app.close() finish before other providers run onModuleDestroy', async () => {
    const { AppModule, state } = appWithResource(10_000);
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    const publisher = app.get(EventPublisher);
    await publisher.post('work', 'x', 1);
    await waitFor(() => state.released);
    const closing = app.close();
    // Without the drain first, Database.onModuleDestroy runs within this turn.
    await settleIo();
    state.released!();
    await closing;
    expect(state.sawOpen).toEqual([true]);
    expect(publisher.stats().handled).toBe(1);
  });

  it('bounds the wait by shutdownTimeoutMs and says so', async () => {
    const { AppModule, state, logger } = appWithResource(50);
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    await app.get(EventPublisher).post('work', 'x', 1);
    await waitFor(() => state.released);
    await app.close();
    expect(logger.text()).toContain('shutdownTimeoutMs (50 ms) reached with 1 event(s) running');
    expect(state.sawOpen).toEqual([]);
  });

  it('rejects posts after close with TransportClosedError', async () => {
    @Module({ imports: [EventsModule.forRoot({ logger: silentLogger })] })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    const publisher = app.get(EventPublisher);
    await app.close();
    await expect(publisher.post('after', 'close', 1)).rejects.toThrow(TransportClosedError);
    expect(() => publisher.postLocal('after', 'close', 1)).toThrow(TransportClosedError);
    await expect(publisher.waitUntilReady()).rejects.toThrow(TransportClosedError);
    // A second close (e.g. a signal during app.close()) is harmless.
    await app.close();
  });

  // Issue 16: once the drain began, a post is sent only where it leaves the
  // process (for the other processes); this process would never handle it.
  it('flushes events posted from other providers’ onModuleDestroy to a transport that leaves the process', async () => {
    const receipts: Promise<unknown>[] = [];

    @Injectable()
    class Goodbye implements OnModuleDestroy {
      constructor(private readonly publisher: EventPublisher) {}
      onModuleDestroy(): void {
        receipts.push(this.publisher.post('app', 'stopping', 1));
      }
    }

    /** The local transport declaring a wider reach, standing for ipc/pg/redis. */
    class LeavingTransport extends LocalTransport {
      override readonly features = { ...new LocalTransport().features, reach: 'host' as const };
    }

    @Module({
      imports: [EventsModule.forRoot({ transport: new LeavingTransport(), logger: silentLogger })],
      providers: [Goodbye],
    })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    const publisher = app.get(EventPublisher);
    await app.close();
    expect(receipts).toHaveLength(1);
    await expect(receipts[0]).resolves.toEqual({ id: expect.any(String) });
    expect(publisher.stats().transport.published).toBe(1);
  });

  it('unregisters its handlers on shutdown', async () => {
    @Injectable()
    class Listener {
      @OnEvent('x')
      onX(): void {}
    }
    @Module({ imports: [EventsModule.forRoot({ logger: silentLogger })], providers: [Listener] })
    class AppModule {}
    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    const publisher = app.get(EventPublisher);
    expect(publisher.stats().handlers).toBe(1);
    await app.close();
    expect(publisher.stats().handlers).toBe(0);
  });
});

import { Injectable, Module, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { BehaviorSubject } from 'rxjs';
import {
  EventPublisher,
  EventsModule,
  IdleTimeoutError,
  OnEvent,
  silentLogger,
  type Envelope,
  type EventsModuleOptions,
  type PublishResult,
  type Transport,
  type TransportContext,
  type TransportStatus,
} from '../../../lib/index.js';
import { PG_URL, uniqueName } from '../../helpers/services.js';

let handled = 0;

@Injectable()
class Counter {
  @OnEvent('idle', 'tick')
  onTick(): void {
    handled++;
  }
}

/**
 * An at-most-once transport that leaves the process and loses every other
 * copy on the way back (as pg NOTIFY does while a LISTEN connection is
 * down): it accepts every publish, delivers only the even ones.
 */
class LossyTransport implements Transport {
  readonly name = 'lossy';
  readonly features = {
    reach: 'network',
    guarantee: 'at-most-once',
    ordering: 'none',
    uniqueScope: 'process',
    redelivers: false,
    loopback: true,
    persistent: false,
  } as const;
  readonly status$ = new BehaviorSubject<TransportStatus>({ state: 'connecting' });
  private context?: TransportContext;
  private sent = 0;

  async connect(context: TransportContext): Promise<void> {
    this.context = context;
    this.status$.next({ state: 'connected' });
  }

  async publish(batch: readonly Envelope[]): Promise<readonly PublishResult[]> {
    for (const envelope of batch) {
      if (this.sent++ % 2 === 0) {
        const context = this.context!;
        setImmediate(() => context.deliver({ envelope, attempt: 1, settle: () => undefined }));
      }
    }
    return batch.map(() => ({ ok: true }));
  }

  stats(): Record<string, number> {
    return { sent: this.sent };
  }

  async close(): Promise<void> {
    this.status$.next({ state: 'closed' });
    this.status$.complete();
  }
}

async function start(
  options: EventsModuleOptions,
): Promise<{ events: EventPublisher; close(): Promise<void> }> {
  @Module({ imports: [EventsModule.forRoot(options)], providers: [Counter as Type] })
  class App {}
  const app = await NestFactory.createApplicationContext(App, { logger: false });
  const events = app.get(EventPublisher);
  await events.waitUntilReady();
  return { events, close: () => app.close() };
}

describe('whenIdle in a Nest app (e2e)', () => {
  beforeEach(() => (handled = 0));

  it('on pg (at-most-once, leaves the process): resolves once every own post came back and was handled', async () => {
    const app = await start({
      transport: 'pg',
      pg: { connectionString: PG_URL, channel: uniqueName('idle') },
      logger: silentLogger,
    });
    try {
      await Promise.all(Array.from({ length: 50 }, (_, i) => app.events.post('idle', 'tick', i)));
      await app.events.whenIdle({ timeoutMs: 20_000 });
      expect(handled).toBe(50);
      expect(app.events.stats().handled).toBe(50);
    } finally {
      await app.close();
    }
  });

  it('never waits for ever when an at-most-once transport lost copies: rejects after its timeout, saying what is missing', async () => {
    // The drain waits for own posts too, so it is bounded by shutdownTimeoutMs here.
    const app = await start({
      transport: new LossyTransport(),
      shutdownTimeoutMs: 300,
      logger: silentLogger,
    });
    try {
      await Promise.all(Array.from({ length: 10 }, (_, i) => app.events.post('idle', 'tick', i)));
      const error = (await app.events
        .whenIdle({ timeoutMs: 200 })
        .catch((e: unknown) => e)) as IdleTimeoutError;
      expect(error).toBeInstanceOf(IdleTimeoutError);
      expect(error.message).toContain('5 own post(s) not back from the transport yet');
      // What did come back was handled.
      expect(handled).toBe(5);
    } finally {
      await app.close();
    }
  });
});

import { Injectable, Module, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  EventPublisher,
  EventsModule,
  OnEvent,
  silentLogger,
  type EventsModuleOptions,
  type HeraldEvent,
} from '../../../lib/index.js';
import { PG_URL, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';

interface App {
  readonly events: EventPublisher;
  /** What this app's handler received: the data and the event's origin. */
  readonly seen: { data: string; origin: string }[];
  close(): Promise<void>;
}

/** An app with one `@OnEvent('two', 'tick')` handler that records what it gets. */
async function start(options: EventsModuleOptions): Promise<App> {
  const seen: { data: string; origin: string }[] = [];
  @Injectable()
  class Recorder {
    @OnEvent('two', 'tick')
    onTick(data: string, event: HeraldEvent): void {
      seen.push({ data, origin: event.origin });
    }
  }
  @Module({ imports: [EventsModule.forRoot(options)], providers: [Recorder as Type] })
  class TwoApp {}
  const app = await NestFactory.createApplicationContext(TwoApp, { logger: false });
  const events = app.get(EventPublisher);
  await events.waitUntilReady();
  return { events, seen, close: () => app.close() };
}

/** The one origin of the events in `seen` whose data starts with `from`. */
function originOf(app: App, from: string): string {
  const origins = new Set(app.seen.filter(s => s.data.startsWith(from)).map(s => s.origin));
  expect(origins.size).toBe(1);
  return [...origins][0];
}

describe('two EventsModule apps in one process (e2e)', () => {
  it('on the local transport: each app handles its own posts only, with its own origin', async () => {
    const a = await start({ logger: silentLogger });
    const b = await start({ logger: silentLogger });
    try {
      await Promise.all(
        Array.from({ length: 30 }, (_, i) => a.events.post('two', 'tick', `a${i}`)),
      );
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => b.events.post('two', 'tick', `b${i}`)),
      );
      await Promise.all([a.events.whenIdle(), b.events.whenIdle()]);
      expect(a.seen.map(s => s.data)).toEqual(Array.from({ length: 30 }, (_, i) => `a${i}`));
      expect(b.seen.map(s => s.data)).toEqual(Array.from({ length: 20 }, (_, i) => `b${i}`));
      expect(originOf(a, 'a')).not.toBe(originOf(b, 'b'));
      expect(a.events.stats()).toMatchObject({ posted: 30, delivered: 30, handled: 30 });
      expect(b.events.stats()).toMatchObject({ posted: 20, delivered: 20, handled: 20 });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('on pg, one channel: each app handles every post, and is idle once its own posts came back', async () => {
    const channel = uniqueName('two_apps');
    const options = (): EventsModuleOptions => ({
      transport: 'pg',
      pg: { connectionString: PG_URL, channel },
      logger: silentLogger,
    });
    const a = await start(options());
    const b = await start(options());
    try {
      // Interleaved: each app's posts and the other's arrive mixed.
      await Promise.all(
        Array.from({ length: 30 }, (_, i) => [
          a.events.post('two', 'tick', `a${i}`),
          ...(i < 20 ? [b.events.post('two', 'tick', `b${i}`)] : []),
        ]).flat(),
      );
      // Each waits for its own posts: those are among what it handled then.
      await a.events.whenIdle({ timeoutMs: 20_000 });
      expect(a.seen.filter(s => s.data.startsWith('a'))).toHaveLength(30);
      await b.events.whenIdle({ timeoutMs: 20_000 });
      expect(b.seen.filter(s => s.data.startsWith('b'))).toHaveLength(20);
      // Sender included: both apps get all 50, in each sender's order.
      await waitFor(() => a.seen.length === 50 && b.seen.length === 50);
      for (const app of [a, b]) {
        for (const from of ['a', 'b']) {
          const count = from === 'a' ? 30 : 20;
          expect(app.seen.filter(s => s.data.startsWith(from)).map(s => s.data)).toEqual(
            Array.from({ length: count }, (_, i) => `${from}${i}`),
          );
        }
      }
      // One origin per app, the same one wherever its posts arrive.
      const originA = originOf(a, 'a');
      const originB = originOf(a, 'b');
      expect(originA).not.toBe(originB);
      expect(originOf(b, 'a')).toBe(originA);
      expect(originOf(b, 'b')).toBe(originB);
      expect(a.events.stats()).toMatchObject({ posted: 30, delivered: 50, handled: 50 });
      expect(b.events.stats()).toMatchObject({ posted: 20, delivered: 50, handled: 50 });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

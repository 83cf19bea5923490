// The two pg variants bench:pg-before-after and bench/pg-probe.ts measure,
// one definition each: EventsModule post -> @OnEvent over the pg transport,
// and PgHub notify -> consumer, both on bench:pg's data and window. The lib
// is passed in, so a probe or a before/after bench can run another
// checkout's (BENCH_BASE).
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type * as HeraldLib from '../../lib/index.js';
import type * as HeraldPg from '../../lib/pg/index.js';
import type { PgTransportOptions } from '../../lib/transports/pg/pg-transport.options.js';
import type { PgHubOptions } from '../../lib/transports/pg/pg.options.js';

export type Lib = typeof HeraldLib;
export type PgLib = typeof HeraldPg;

/** bench:pg's event data. */
export interface PgBenchData {
  t: number;
  s: string;
}

/** Data whose JSON is about `size` bytes long (bench:pg's). */
export const pgBenchData =
  (size: number): (() => PgBenchData) =>
  () => ({ t: performance.now(), s: 'x'.repeat(size - 30) });

/** Counts handled events and resolves once a target is reached. */
export class HitCounter {
  private count = 0;
  private target = 0;
  private reached: () => void = () => undefined;

  /** The handlers call this once per event they handle. */
  readonly hit = (): void => {
    if (++this.count === this.target) this.reached();
  };

  /** Resolves when `events` more events were handled (counted from now). */
  until(events: number): Promise<void> {
    this.count = 0;
    this.target = events;
    return new Promise(resolve => (this.reached = resolve));
  }
}

/** `total` sends, at most `window` in flight (each lane sends its next when its last settled). */
export async function windowed(
  total: number,
  window: number,
  send: () => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < total) {
      next++;
      await send();
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, total) }, lane));
}

/**
 * An app with the pg transport (`pg` options as given) and one `@OnEvent('bench',
 * 'tick')` handler calling `hit`; runs `body` with its post, then closes it.
 */
export async function withHeraldPg<T>(
  lib: Lib,
  pg: PgTransportOptions,
  hit: () => void,
  body: (post: (data: PgBenchData) => Promise<unknown>) => Promise<T>,
): Promise<T> {
  @Injectable()
  class Listener {
    @lib.OnEvent('bench', 'tick')
    onTick(value: PgBenchData): void {
      if (value.t > 0) hit();
    }
  }
  @Module({
    imports: [
      lib.EventsModule.forRoot({
        transport: 'pg',
        pg,
        logger: lib.silentLogger,
      }),
    ],
    providers: [Listener],
  })
  class App {}
  const app = await NestFactory.createApplicationContext(App, { logger: false });
  await app.init();
  const publisher = app.get(lib.EventPublisher);
  await publisher.waitUntilReady();
  try {
    return await body(data => publisher.post('bench', 'tick', data));
  } finally {
    await app.close();
  }
}

/** A PgHub (options as given) with a consumer of `channel` calling `hit`; runs `body` with its notify, then stops it. */
export async function withPgHub<T>(
  pgLib: PgLib,
  options: PgHubOptions,
  channel: string,
  hit: () => void,
  body: (notify: (data: PgBenchData) => Promise<unknown>) => Promise<T>,
): Promise<T> {
  const pgHub = new pgLib.PgHub(options);
  const consumer = pgHub.consumer(event => {
    if (event.topic !== null && (event.value as PgBenchData).t > 0) hit();
  });
  await Promise.all([pgHub.start(), consumer.subscribe(channel)]);
  try {
    return await body(data => pgHub.notify(channel, 1n, data));
  } finally {
    await pgHub.stop();
  }
}

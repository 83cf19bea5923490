// Before/after of the bus's post path in ONE process, interleaved round by
// round: EventsModule post -> @OnEvent on another checkout's lib ("before")
// and on this one ("after"), the same transport for both (each app its own
// channel or stream). On a shared machine, figures of separate runs move with
// the load; these share it. CPU per delivered event (user + sys of this
// process: for pg and redis it includes the clients, not the servers).
//
//   git archive <commit> lib | tar -x -C /tmp/before     # next to a node_modules:
//   ln -s "$PWD/node_modules" /tmp/before/node_modules
//   BENCH_BASE=/tmp/before BENCH_TRANSPORT=local node --expose-gc --import ./scripts/register-ts.mjs bench/bus-before-after.ts
//
// BENCH_TRANSPORT local (default) | pg | redis; BENCH_EVENTS (default 200000
// local, 20000 otherwise), BENCH_ROUNDS (default 7), PG_URL, REDIS_URL.
import 'reflect-metadata';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import * as afterLib from '../lib/index.js';
import { beforeBase, importBefore, interleave, runMain, setting } from './harness/index.js';

type Lib = typeof afterLib;

const TRANSPORT = process.env.BENCH_TRANSPORT ?? 'local';
const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const EVENTS = setting('BENCH_EVENTS', TRANSPORT === 'local' ? 200_000 : 20_000, 2000);
const ROUNDS = Math.max(1, setting('BENCH_ROUNDS', 7, 1));
const WINDOW = 1000;

const payload = (i: number): object => ({ id: i, name: 'order-created', tags: ['a', 'b'] });

let count = 0;
const names: string[] = [];

/** The transport options of one app: its own channel or stream. */
function transportOf(lib: Lib): afterLib.EventsModuleOptions {
  const name = `bench_bus_ba_${process.pid}_${names.length}`;
  names.push(name);
  const logger = lib.silentLogger;
  if (TRANSPORT === 'pg') {
    return { transport: 'pg', pg: { connectionString: PG_URL, channel: name }, logger };
  }
  if (TRANSPORT === 'redis')
    return { transport: 'redis', redis: { url: REDIS_URL, stream: name }, logger };
  return { logger };
}

async function app(
  lib: Lib,
): Promise<{ context: INestApplicationContext; publisher: afterLib.EventPublisher }> {
  @Injectable()
  class Listener {
    @lib.OnEvent('orders', 'created')
    onCreated(): void {
      count++;
    }
  }
  @Module({ imports: [lib.EventsModule.forRoot(transportOf(lib))], providers: [Listener] })
  class BeforeAfterApp {}
  const context = await NestFactory.createApplicationContext(BeforeAfterApp, { logger: false });
  await context.init();
  const publisher = context.get(lib.EventPublisher);
  await publisher.waitUntilReady();
  return { context, publisher };
}

/** `events` posts, WINDOW in flight, all handled: µs of CPU per event. */
async function timed(publisher: afterLib.EventPublisher, events: number): Promise<number> {
  count = 0;
  const before = process.cpuUsage();
  for (let i = 0; i < events; i += WINDOW) {
    const batch: Promise<unknown>[] = [];
    for (let j = i; j < i + WINDOW && j < events; j++)
      batch.push(publisher.post('orders', 'created', payload(j)));
    await Promise.all(batch);
  }
  while (count < events) await new Promise(resolve => setImmediate(resolve));
  const used = process.cpuUsage(before);
  return (used.user + used.system) / events;
}

runMain('bench:bus-before-after', async () => {
  const base = beforeBase();
  const beforeLib = await importBefore<Lib>(base, 'lib/index.ts');
  const sides = { before: await app(beforeLib), after: await app(afterLib) };
  try {
    for (const side of ['before', 'after'] as const) await timed(sides[side].publisher, 2000);
    const measure = (side: 'before' | 'after') => (): Promise<number> => {
      (globalThis as { gc?: () => void }).gc?.();
      return timed(sides[side].publisher, EVENTS);
    };
    await interleave(
      `bench:bus-before-after: before = ${base}, ${TRANSPORT}, ${EVENTS} events per side and round, ${WINDOW} in flight`,
      ROUNDS,
      [
        ['before', measure('before')],
        ['after', measure('after')],
      ],
      [['after/before', 'after', 'before']],
    );
  } finally {
    await sides.after.context.close();
    await sides.before.context.close();
    if (TRANSPORT === 'redis') {
      const redis = new Redis(REDIS_URL);
      await redis.del(...names);
      redis.disconnect();
    }
  }
});

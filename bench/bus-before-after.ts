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
//
// BENCH_SITES=1: instead of the rounds, each side once under V8's sampling heap
// profiler (every allocation, collected or not, sampled every 64 bytes): bytes
// allocated per event by allocation site, the site being the nearest function in
// a lib/ (a load-independent figure). Run node with --no-turbo-inlining so that
// each function keeps its own allocations (inlined, they count under the caller).
//
// BENCH_SINGLE=before|after: that side alone, once (after the warm-up), for a
// load-independent instruction count per event: with BENCH_CALLGRIND=1, under
// `valgrind --tool=callgrind --instr-atstart=no`, callgrind's instrumentation is
// on for the timed part only (callgrind_control); "Collected" / BENCH_EVENTS is
// the instructions per event. The other side's app is not even started.
import 'reflect-metadata';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import * as afterLib from '../lib/index.js';
import {
  beforeBase,
  callgrindInstrumentation,
  importBefore,
  interleave,
  runMain,
  sampleHeapSites,
  setting,
  type SampledFrame,
} from './harness/index.js';

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

/** BENCH_SINGLE: one side alone, warmed up, then `EVENTS` under callgrind's instrumentation (if on). */
async function single(lib: Lib, side: string): Promise<void> {
  const { context, publisher } = await app(lib);
  try {
    await timed(publisher, Math.max(2000, Math.min(EVENTS, 20_000)));
    (globalThis as { gc?: () => void }).gc?.();
    await callgrindInstrumentation('on');
    const cpu = await timed(publisher, EVENTS);
    await callgrindInstrumentation('off');
    console.log(`${side} (${TRANSPORT}): ${cpu.toFixed(2)} µs CPU/event (${EVENTS} events)`);
  } finally {
    await context.close();
  }
}

/** `function lib/path` of a frame in a lib/ (either side's), else undefined. */
function libSite(frame: SampledFrame): string | undefined {
  const at = frame.url.lastIndexOf('/lib/');
  if (at < 0 || frame.url.includes('node_modules')) return undefined;
  return `${frame.functionName || '(anonymous)'} ${frame.url.slice(at + 1)}`;
}

/** BENCH_SITES: `events` posts under the sampling heap profiler: bytes per event by nearest lib/ site. */
async function sites(
  publisher: afterLib.EventPublisher,
  events: number,
): Promise<Map<string, number>> {
  (globalThis as { gc?: () => void }).gc?.();
  const stop = await sampleHeapSites();
  await timed(publisher, events);
  return stop(events, libSite, '(outside lib/)');
}

/** BENCH_SITES: prints both sides' bytes per event by site, largest first. */
function printSites(before: Map<string, number>, after: Map<string, number>): void {
  const total = (map: Map<string, number>): number => [...map.values()].reduce((a, b) => a + b, 0);
  const names = [...new Set([...before.keys(), ...after.keys()])].sort(
    (a, b) => (after.get(b) ?? 0) - (after.get(a) ?? 0),
  );
  console.log(`bytes allocated per event by site (${TRANSPORT}, ${EVENTS} events each side):`);
  console.log(`${'before'.padStart(8)} ${'after'.padStart(8)}  site`);
  for (const name of names) {
    const b = before.get(name) ?? 0;
    const a = after.get(name) ?? 0;
    if (Math.max(a, b) >= 1)
      console.log(`${b.toFixed(0).padStart(8)} ${a.toFixed(0).padStart(8)}  ${name}`);
  }
  console.log(
    `${total(before).toFixed(0).padStart(8)} ${total(after).toFixed(0).padStart(8)}  total`,
  );
}

runMain('bench:bus-before-after', async () => {
  const base = beforeBase();
  const beforeLib = await importBefore<Lib>(base, 'lib/index.ts');
  const only = process.env.BENCH_SINGLE;
  if (only !== undefined) {
    if (only !== 'before' && only !== 'after') throw new Error('BENCH_SINGLE: before or after');
    await single(only === 'before' ? beforeLib : afterLib, only);
    return;
  }
  const sides = { before: await app(beforeLib), after: await app(afterLib) };
  try {
    for (const side of ['before', 'after'] as const) await timed(sides[side].publisher, 2000);
    if (process.env.BENCH_SITES) {
      const before = await sites(sides.before.publisher, EVENTS);
      printSites(before, await sites(sides.after.publisher, EVENTS));
      return;
    }
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

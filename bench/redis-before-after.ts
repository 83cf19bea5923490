// Before/after over Redis in ONE process, interleaved round by round: herald
// (EventsModule post -> @OnEvent) and the stream parts (StreamPublisher ->
// StreamSubscriber) of another checkout's lib ("before") and of this one
// ("after"). On a shared machine, figures of separate runs move with the load;
// these share it. CPU per delivered event (user + sys of this process).
//
//   git archive <commit> lib | tar -x -C /tmp/before     # next to a node_modules:
//   ln -s "$PWD/node_modules" /tmp/before/node_modules
//   BENCH_BASE=/tmp/before node --expose-gc --import ./scripts/register-ts.mjs bench/redis-before-after.ts
//
// BENCH_EVENTS (default 30000), BENCH_ROUNDS (default 6), BENCH_WARMUP (default 2000), REDIS_URL. BENCH_SINGLE=<variant>
// runs that one variant once (warm-up included), for a load-independent instruction
// count per event: two callgrind runs at two BENCH_EVENTS, their difference over the
// difference in events; it prints the heap bytes allocated per event of the timed part
// and its garbage collections too (v8.GCProfiler), load-independent as well. With
// BENCH_CALLGRIND=1 as well, under `valgrind --tool=callgrind --instr-atstart=no`, the
// bench turns callgrind's instrumentation on for the timed part only (callgrind_control):
// the "Collected" instructions over BENCH_EVENTS are the instructions per event, from
// one run. Add `--separate-threads=yes` and read the main thread's file (`*.out-01`) for the
// main thread alone: the all-threads total moves ±10% between runs (compiler jobs on helper
// threads land in the timed part), the main thread's about ±600 instructions per event at 40k.
// BENCH_SITES=1 (with BENCH_SINGLE): the timed part under the sampling
// heap profiler (objects collected by minor and major GCs included): bytes
// allocated per event by the innermost frame with a file (lib/, a package's, or
// node's), largest first; the CPU figure is then not comparable. BENCH_SITES=old:
// only what survived the scavenges (promoted), by site.
// BENCH_SNAPSHOT=<file> (with BENCH_SINGLE): a heap snapshot halfway through the
// timed part, for what is alive with the window's posts in flight.
// BENCH_IN_FLIGHT=<n> (with BENCH_SINGLE; REDIS_URL a private server, whose
// writes it pauses): the heap bytes each of n events keeps while its write
// waits for Redis; BENCH_SNAPSHOT_HELD=<file>: a heap snapshot then.
// BENCH_HANDLER_MS=<ms>: herald's handler async, awaiting a timer that long (concurrency 2000).
// BENCH_METRIC=wall: wall-clock µs per event (1e6 / events/s) instead of CPU, interleaved the same.
// BENCH_CODEC=1: the envelope entry codec alone (no Redis), before against
// after, interleaved.
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { GCProfiler, getHeapStatistics, writeHeapSnapshot } from 'node:v8';
import * as afterLib from '../lib/index.js';
import * as afterRedis from '../lib/redis/index.js';
import {
  beforeBase,
  callgrindInstrumentation,
  importBefore,
  interleave,
  median,
  runMain,
  sampleHeapSites,
  setting,
  type TimedVariant,
  type SampledFrame,
} from './harness/index.js';

type Lib = typeof afterLib;
type RedisLib = typeof afterRedis;

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const EVENTS = setting('BENCH_EVENTS', 30_000, 1000);
const ROUNDS = Math.max(1, setting('BENCH_ROUNDS', 6, 1));
const WINDOW = 1000;
/**
 * BENCH_HANDLER_MS=<ms>: herald's handler is async and takes that long (a
 * timer), with `concurrency: 2000`: thousands of events alive at each
 * scavenge, the case of slow handlers (pretenuring of what they hold).
 */
const HANDLER_MS = setting('BENCH_HANDLER_MS', 0);
const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms));
/** BENCH_METRIC=wall: the rounds compare wall-clock µs per event (1e6 / events/s) instead of CPU. */
const WALL = process.env.BENCH_METRIC === 'wall';
/** BENCH_READ=<n>: the subscribers' read count (maxInFlight three times it); else the defaults (1000, 3000). */
const READ = setting('BENCH_READ', 0);
/** Untimed events first: the timed part runs optimized code (callgrind: raise it, e.g. 20000). */
const WARMUP = setting('BENCH_WARMUP', 2000);

const sample = (i: number): object => ({
  i,
  t: performance.now(),
  name: 'order-created',
  customer: `customer-${i % 1000}`,
  amount: 1234.5,
  tags: ['priority', 'web', 'eu'],
});

let count = 0;
let target = 0;
let reached: () => void = () => undefined;
/** BENCH_SNAPSHOT=<file>: a heap snapshot halfway through the timed part (what is alive mid-run). */
let snapshotAt = -1;
const hit = (): void => {
  if (++count === target) reached();
  else if (count === snapshotAt) {
    snapshotAt = -1;
    console.log(`heap snapshot: ${writeHeapSnapshot(process.env.BENCH_SNAPSHOT)}`);
  }
};

/** Events whose post (publish) has resolved, this timed part: with `count`, the consumer's lag. */
let written = 0;

async function windowed(total: number, send: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < total) {
      await send(next++);
      written++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(WINDOW, total) }, lane));
}

/** BENCH_SINGLE: what the last timed part allocated, per event, and its garbage collections. */
let allocation:
  | {
      bytesPerEvent: number;
      gcs: number;
      scavenges: number;
      promoted: number;
      marks: number;
      gcMicros: number;
    }
  | undefined;

/** Bytes a collection moved into (or freed from) the old generation: every space but the young ones. */
function oldGenerationDelta(gc: {
  beforeGC: { heapSpaceStatistics: { spaceName: string; spaceUsedSize: number }[] };
  afterGC: { heapSpaceStatistics: { spaceName: string; spaceUsedSize: number }[] };
}): number {
  const used = (spaces: { spaceName: string; spaceUsedSize: number }[]): number =>
    spaces
      .filter(s => s.spaceName !== 'new_space' && s.spaceName !== 'new_large_object_space')
      .reduce((sum, s) => sum + s.spaceUsedSize, 0);
  return used(gc.afterGC.heapSpaceStatistics) - used(gc.beforeGC.heapSpaceStatistics);
}

/**
 * Bytes allocated on the V8 heap between `start` and the returned stop (a
 * load-independent figure): what each collection found in use before it,
 * less what the previous one left, plus what is in use at the stop.
 */
function countAllocations(): () => {
  bytes: number;
  gcs: number;
  scavenges: number;
  promoted: number;
  marks: number;
  gcMicros: number;
} {
  const profiler = new GCProfiler();
  const start = getHeapStatistics().used_heap_size;
  profiler.start();
  return () => {
    const end = getHeapStatistics().used_heap_size;
    const { statistics } = profiler.stop();
    let bytes = 0;
    let left = start;
    let scavenges = 0;
    let promoted = 0;
    let marks = 0;
    let gcMicros = 0;
    for (const gc of statistics) {
      gcMicros += gc.cost;
      bytes += gc.beforeGC.heapStatistics.usedHeapSize - left;
      left = gc.afterGC.heapStatistics.usedHeapSize;
      if (gc.gcType === 'Scavenge') {
        scavenges++;
        promoted += oldGenerationDelta(gc);
      } else if (gc.gcType === 'MarkSweepCompact') marks++;
    }
    return {
      bytes: bytes + end - left,
      gcs: statistics.length,
      scavenges,
      promoted,
      marks,
      gcMicros,
    };
  };
}

/** `function file:line` of a frame with a file, shortened to lib/ or the package; else undefined. */
function site(frame: SampledFrame): string | undefined {
  if (frame.url === '') return undefined;
  const modules = frame.url.lastIndexOf('node_modules/');
  const lib = frame.url.lastIndexOf('/lib/');
  const file =
    modules >= 0
      ? frame.url.slice(modules + 13)
      : lib >= 0
        ? frame.url.slice(lib + 1)
        : frame.url.replace(/^.*\//, '');
  return `${frame.functionName || '(anonymous)'} ${file}:${frame.lineNumber + 1}`;
}

/** BENCH_SITES: starts the sampling heap profiler; the returned stop prints bytes per event by site. */
async function sampleSites(): Promise<(events: number) => Promise<void>> {
  // BENCH_SITES=old: only what a scavenge did not collect (promoted: survived two).
  const stop = await sampleHeapSites(process.env.BENCH_SITES !== 'old');
  return async events => {
    const bytes = await stop(events, site, '(no file)');
    const total = [...bytes.values()].reduce((a, b) => a + b, 0);
    console.log(`bytes allocated per event by site, ${events} events: ${total.toFixed(0)} in all`);
    for (const [name, size] of [...bytes].sort((a, b) => b[1] - a[1]))
      if (size >= 2) console.log(`${size.toFixed(0).padStart(6)}  ${name}`);
  };
}

/** BENCH_IN_FLIGHT=<n> (at most the window): see {@link heldInFlight}. */
const IN_FLIGHT = Math.min(setting('BENCH_IN_FLIGHT', 0), WINDOW);

/**
 * BENCH_IN_FLIGHT: the heap a post (or publish) keeps while its write waits
 * for Redis, load-independent: Redis's writes paused (`CLIENT PAUSE WRITE`,
 * so use a private server as REDIS_URL), `IN_FLIGHT` sent, then after a full
 * collection the heap in use beyond what it was before, per event; then
 * Redis resumes and they are handled.
 */
async function heldInFlight(
  send: (events: number) => Promise<void>,
  until: (events: number) => Promise<void>,
): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc!;
  const admin = new Redis(REDIS_URL);
  gc();
  const before = getHeapStatistics().used_heap_size;
  await admin.call('CLIENT', 'PAUSE', '10000', 'WRITE');
  const handled = until(IN_FLIGHT);
  const sent = send(IN_FLIGHT);
  // The posts reach the publisher and its script call the socket: no reply comes.
  await new Promise(resolve => setTimeout(resolve, 500));
  gc();
  const held = getHeapStatistics().used_heap_size - before;
  if (process.env.BENCH_SNAPSHOT_HELD)
    console.log(`heap snapshot: ${writeHeapSnapshot(process.env.BENCH_SNAPSHOT_HELD)}`);
  await admin.call('CLIENT', 'UNPAUSE');
  await sent;
  await handled;
  admin.disconnect();
  console.log(
    `heap held per event waiting for its write: ${(held / IN_FLIGHT).toFixed(0)} B (${IN_FLIGHT} in flight)`,
  );
}

let lagLine = '';

/** A warm-up, then `EVENTS` sent and handled: µs of CPU per event. */
async function timed(send: (events: number) => Promise<void>): Promise<number> {
  const until = (events: number): Promise<void> => {
    count = 0;
    target = events;
    return new Promise(resolve => (reached = resolve));
  };
  let handled = until(WARMUP);
  await send(WARMUP);
  await handled;
  (globalThis as { gc?: () => void }).gc?.();
  // Twice: the first pays for what its code compiled (the heap it keeps is not per event).
  if (IN_FLIGHT > 0) for (let pass = 0; pass < 2; pass++) await heldInFlight(send, until);
  handled = until(EVENTS);
  if (process.env.BENCH_SNAPSHOT) snapshotAt = EVENTS >> 1;
  const allocated = process.env.BENCH_SINGLE ? countAllocations() : undefined;
  const sites = process.env.BENCH_SITES ? await sampleSites() : undefined;
  await callgrindInstrumentation('on');
  // The consumer's lag (written, not yet handled), sampled: how far behind it reads.
  written = 0;
  const lags: number[] = [];
  const lagTimer = process.env.BENCH_SINGLE
    ? setInterval(() => lags.push(written - count), 5)
    : undefined;
  const before = process.cpuUsage();
  const started = performance.now();
  await send(EVENTS);
  if (process.env.BENCH_LAG)
    console.log(`handled when the last post settled: ${count} of ${EVENTS}`);
  await handled;
  const used = process.cpuUsage(before);
  clearInterval(lagTimer);
  await callgrindInstrumentation('off');
  await sites?.(EVENTS);
  const counted = allocated?.();
  if (counted) {
    allocation = {
      bytesPerEvent: counted.bytes / EVENTS,
      gcs: counted.gcs,
      scavenges: counted.scavenges,
      promoted: counted.promoted,
      marks: counted.marks,
      gcMicros: counted.gcMicros,
    };
    lags.sort((a, b) => a - b);
    lagLine = `consumer lag (written - handled, every 5 ms): median ${lags[lags.length >> 1] ?? 0}, max ${lags.at(-1) ?? 0}`;
  }
  // BENCH_METRIC=wall: µs of wall-clock time per event (the inverse of events/s), interleaved just the same.
  if (WALL) return ((performance.now() - started) * 1000) / EVENTS;
  return (used.user + used.system) / EVENTS;
}

let streams = 0;
const streamName = (what: string): string => `bench:ba:${process.pid}:${what}:${++streams}`;

async function drop(key: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  await redis.del(key);
  redis.disconnect();
}

async function herald(lib: Lib): Promise<number> {
  const stream = streamName('herald');
  @Injectable()
  class Listener {
    @lib.OnEvent('orders', 'created')
    onCreated(): void | Promise<void> {
      if (HANDLER_MS > 0) return sleep(HANDLER_MS).then(hit);
      hit();
    }
  }
  @Module({
    imports: [
      lib.EventsModule.forRoot({
        transport: 'redis',
        redis: { url: REDIS_URL, stream, maxLen: 0, ...(READ ? { readCount: READ } : {}) },
        logger: lib.silentLogger,
        // Slow handlers overlap (else one at a time, in order).
        ...(HANDLER_MS > 0 ? { concurrency: 2000 } : {}),
      }),
    ],
    providers: [Listener],
  })
  class App {}
  const app = await NestFactory.createApplicationContext(App, { logger: false });
  const publisher = app.get(lib.EventPublisher);
  try {
    return await timed(events =>
      windowed(events, i => publisher.post('orders', 'created', sample(i))),
    );
  } finally {
    await app.close();
    await drop(stream);
  }
}

async function parts(lib: Lib, redis: RedisLib): Promise<number> {
  const stream = streamName('parts');
  const publisher = new redis.StreamPublisher<object>({
    url: REDIS_URL,
    stream,
    maxLen: 0,
    encode: item => ['payload', JSON.stringify(item)],
    logger: lib.silentLogger,
  });
  const subscriber = new redis.StreamSubscriber({
    url: REDIS_URL,
    stream,
    name: 'bench',
    count: READ || 1000,
    concurrency: Number.POSITIVE_INFINITY,
    maxInFlight: (READ || 1000) * 3,
    group: { name: 'bench', destroyOnClose: true },
    logger: lib.silentLogger,
  });
  // As bench:redis reads the parts: the transport's entry path, where the lib has it.
  if (typeof subscriber.subscribeEntries === 'function' && !process.env.BENCH_PARTS_SETTLED) {
    await subscriber.subscribeEntries((entry, held, deliveries) => {
      JSON.parse(entry[1]![1]);
      hit();
      subscriber.settleEntry(held, deliveries);
    });
  } else {
    await subscriber.subscribeSettled((message, done) => {
      JSON.parse(message.fields.payload);
      hit();
      done();
    });
  }
  await publisher.connection.whenReady();
  try {
    return await timed(events => windowed(events, i => publisher.publishAndWait(sample(i))));
  } finally {
    await subscriber.close();
    await publisher.close();
    await drop(stream);
  }
}

/**
 * The envelope entry codec alone, no Redis (BENCH_CODEC=1): what the redis
 * layer adds per event on both ends: encoding a post's envelope into its entry
 * fields and decoding an entry read back, 1000 envelopes of one run of posts
 * (one source, event, origin; a new occurredAt every 50). ns of CPU per event.
 */
function codecCost(redis: RedisLib): number {
  const payload = JSON.stringify(sample(0));
  const envelopes = Array.from({ length: 1000 }, (_, i) => ({
    id: `0b5f3c1e-8a4b-4c59-9d1e-2f3a4b5c6d${(i % 256).toString(16).padStart(2, '0')}`,
    source: 'orders',
    event: 'created',
    payload,
    origin: 'vm/23804/a6a8bfd4',
    occurredAt: new Date(1_796_404_568_536 + Math.floor(i / 50)).toISOString(),
  }));
  // What a read returns: fresh strings, not the ones encoded.
  const read = envelopes.map(e =>
    redis.encodeEnvelopeEntry(e).map(field => Buffer.from(field).toString()),
  );
  let sink = 0;
  const before = process.cpuUsage();
  for (let pass = 0; pass < 200; pass++) {
    for (const envelope of envelopes) sink += redis.encodeEnvelopeEntry(envelope)[1].length;
    for (const flat of read) sink += redis.decodeEnvelopeFlat(flat).id.length;
  }
  const used = process.cpuUsage(before);
  if (sink === 0) throw new Error('nothing encoded');
  return ((used.user + used.system) * 1000) / (200 * envelopes.length);
}

runMain('bench:redis-before-after', async () => {
  const base = beforeBase();
  const beforeLib = await importBefore<Lib>(base, 'lib/index.js');
  const beforeRedis = await importBefore<RedisLib>(base, 'lib/redis/index.js');
  const variants: TimedVariant[] = [
    ['herald before', () => herald(beforeLib)],
    ['herald after', () => herald(afterLib)],
    ['parts before', () => parts(beforeLib, beforeRedis)],
    ['parts after', () => parts(afterLib, afterRedis)],
  ];
  if (process.env.BENCH_CODEC) {
    const costs: Record<'before' | 'after', number[]> = { before: [], after: [] };
    for (let round = 0; round < ROUNDS * 3; round++)
      for (const side of round % 2
        ? (['after', 'before'] as const)
        : (['before', 'after'] as const))
        costs[side].push(codecCost(side === 'before' ? beforeRedis : afterRedis));
    const ratios = costs.after.map((v, i) => v / costs.before[i]);
    console.log(
      `envelope codec, encode + decode, ns CPU per event, median (range) of ${costs.after.length} rounds: ` +
        `before ${median(costs.before).toFixed(0)} (${Math.min(...costs.before).toFixed(0)}–${Math.max(...costs.before).toFixed(0)}), ` +
        `after ${median(costs.after).toFixed(0)} (${Math.min(...costs.after).toFixed(0)}–${Math.max(...costs.after).toFixed(0)}); ` +
        `after/before median ${median(ratios).toFixed(2)}x`,
    );
    return;
  }
  const single = process.env.BENCH_SINGLE;
  if (single) {
    // One variant once, for an instruction count (callgrind) of the whole process.
    const run = variants.find(([name]) => name === single)?.[1];
    if (!run) throw new Error(`BENCH_SINGLE: no variant '${single}'`);
    const cpu = await run();
    const heap = allocation
      ? `, ${allocation.bytesPerEvent.toFixed(0)} B allocated/event, ${allocation.gcs} GCs: ` +
        `${allocation.scavenges} scavenges promoting ${(allocation.promoted / Math.max(1, allocation.scavenges) / 1024).toFixed(0)} KB each, ` +
        `${allocation.marks} mark-compacts, GC pauses ${(allocation.gcMicros / EVENTS).toFixed(2)} µs/event; ${lagLine}`
      : '';
    console.log(`${single}: ${cpu.toFixed(2)} µs CPU/event${heap} (${EVENTS} events)`);
    return;
  }
  await interleave(
    `bench:redis-before-after: before = ${base}, ${EVENTS} events per variant and round${WALL ? ', WALL-CLOCK µs per event (not CPU)' : ''}`,
    ROUNDS,
    variants,
    [
      ['herald/parts before', 'herald before', 'parts before'],
      ['herald/parts after', 'herald after', 'parts after'],
      ['herald after/before', 'herald after', 'herald before'],
      ['parts after/before', 'parts after', 'parts before'],
    ],
  );
});

// Before/after over PostgreSQL in ONE process, interleaved round by round:
// herald (EventsModule post -> @OnEvent, pg transport) and its parts without
// the bus (PgHub notify -> consumer hook), of another checkout's lib
// ("before") and of this one ("after"), as bench:pg runs them (100 B of
// data, 4000 posts in flight or 4 MiB of data, the handler counting). On a shared machine,
// figures of separate runs move with the load; these share it. CPU per
// delivered event (user + sys of this process, warm-up excluded).
//
//   git archive <commit> lib | tar -x -C /tmp/before     # next to a node_modules:
//   ln -s "$PWD/node_modules" /tmp/before/node_modules
//   BENCH_BASE=/tmp/before node --expose-gc --import ./scripts/register-ts.mjs bench/pg-before-after.ts
//
// BENCH_EVENTS (default 40000), BENCH_ROUNDS (default 6), BENCH_SIZE (bytes
// of data, default 100), PG_URL. After the CPU figures: events/s (wall: under
// load a figure of the machine as much as of the code) and young-generation
// collections per 10,000 events (what each side allocates, whatever the load),
// and their ratios herald/hub.
import 'reflect-metadata';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import * as afterLib from '../lib/index.js';
import * as afterPg from '../lib/pg/index.js';
import {
  HitCounter,
  pgBenchData,
  windowed,
  withHeraldPg,
  withPgHub,
  type Lib,
  type PgLib,
} from './harness/pg-variants.js';
import {
  beforeBase,
  cpuMicros,
  importBefore,
  interleave,
  runMain,
  setting,
  median,
  type TimedVariant,
} from './harness/index.js';

const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const EVENTS = setting('BENCH_EVENTS', 40_000, 1000);
const WARM_UP = setting('BENCH_WARM_UP', Math.max(1000, Math.round(EVENTS / 10)), 1000);
const ROUNDS = Math.max(1, setting('BENCH_ROUNDS', 6, 1));
const SIZE = Math.max(30, setting('BENCH_SIZE', 100, 100));
/** bench:pg's window: 4000 in flight, at most 4 MiB of data (1024 at 4 KB). */
const WINDOW = Math.min(4000, Math.floor((4 * 1024 * 1024) / SIZE));

const data = pgBenchData(SIZE);
const counter = new HitCounter();
const hit = counter.hit;

/** Young-generation collections so far (a count of what was allocated, at a fixed semi-space). */
let scavenges = 0;
new PerformanceObserver(list => {
  for (const entry of list.getEntries())
    if (
      (entry as { detail?: { kind?: number } }).detail?.kind ===
      perfConstants.NODE_PERFORMANCE_GC_MINOR
    )
      scavenges++;
}).observe({ entryTypes: ['gc'] });

/** The variant being measured, and each variant's events/s and scavenges per 10,000 events by round. */
let measuring = '';
const rates = new Map<string, number[]>();
const young = new Map<string, number[]>();
const record = (into: Map<string, number[]>, value: number): void => {
  into.set(measuring, [...(into.get(measuring) ?? []), value]);
};

/** A warm-up, then `EVENTS` sent and handled: µs of CPU per event. */
async function timed(send: () => Promise<unknown>): Promise<number> {
  let handled = counter.until(WARM_UP);
  await windowed(WARM_UP, WINDOW, send);
  await handled;
  (globalThis as { gc?: () => void }).gc?.();
  handled = counter.until(EVENTS);
  const before = cpuMicros();
  const started = performance.now();
  const scavengesBefore = scavenges;
  await windowed(EVENTS, WINDOW, send);
  await handled;
  const cpu = (cpuMicros() - before) / EVENTS;
  record(rates, EVENTS / ((performance.now() - started) / 1000));
  // Observer entries arrive after a turn: let them land.
  await new Promise(resolve => setImmediate(resolve));
  record(young, ((scavenges - scavengesBefore) * 10_000) / EVENTS);
  return cpu;
}

let channels = 0;
const channelName = (what: string): string => `bench_ba_${process.pid}_${what}_${++channels}`;

async function herald(lib: Lib): Promise<number> {
  const options = {
    connectionString: PG_URL,
    channel: channelName('herald'),
    applicationName: 'herald-bench-ba',
  };
  return withHeraldPg(lib, options, hit, post => timed(() => post(data())));
}

async function hub(pgLib: PgLib): Promise<number> {
  const options = { connectionString: PG_URL, applicationName: 'hub-bench-ba' };
  return withPgHub(pgLib, options, channelName('hub'), hit, notify => timed(() => notify(data())));
}

runMain('bench:pg-before-after', async () => {
  const base = beforeBase();
  const beforeLib = await importBefore<Lib>(base, 'lib/index.js');
  const beforePg = await importBefore<PgLib>(base, 'lib/pg/index.js');
  const named = (name: string, run: () => Promise<number>): TimedVariant => [
    name,
    () => {
      measuring = name;
      return run();
    },
  ];
  const variants: TimedVariant[] = [
    named('herald before', () => herald(beforeLib)),
    named('herald after', () => herald(afterLib)),
    named('hub before', () => hub(beforePg)),
    named('hub after', () => hub(afterPg)),
  ];
  const only = (process.env.BENCH_ONLY ?? '').split(',').filter(part => part !== '');
  await interleave(
    `bench:pg-before-after: before = ${base}, ${EVENTS} events of ${SIZE} B per variant and round`,
    ROUNDS,
    only.length > 0 ? variants.filter(([name]) => only.includes(name)) : variants,
    [
      ['herald/hub before', 'herald before', 'hub before'],
      ['herald/hub after', 'herald after', 'hub after'],
      ['herald after/before', 'herald after', 'herald before'],
      ['hub after/before', 'hub after', 'hub before'],
    ],
  );
  // Events/s last: the line bench:smoke checks is a ratio's.
  for (const [what, figures] of [
    ['scavenges per 10,000 events', young],
    ['events/s', rates],
  ] as const) {
    console.log(`\n${what}, median (range) of the rounds:`);
    for (const [name, values] of figures)
      console.log(
        `${name.padEnd(14)} ${median(values).toFixed(1)} (${Math.min(...values).toFixed(1)}–${Math.max(...values).toFixed(1)})`,
      );
    for (const side of ['before', 'after']) {
      const herald = figures.get(`herald ${side}`);
      const hub = figures.get(`hub ${side}`);
      // Too few events for a collection (smoke mode): no ratio.
      if (!herald || !hub || hub.includes(0)) continue;
      // events/s: hub over herald (how far herald is below its parts); scavenges: herald over hub.
      const values = herald.map((value, i) =>
        figures === rates ? hub[i] / value : value / hub[i],
      );
      console.log(
        `${figures === rates ? 'hub/herald events/s' : 'herald/hub scavenges'} ${side} median ${median(values).toFixed(2)}x, per round ${values.map(v => v.toFixed(2)).join(' ')}`,
      );
    }
    if (figures === rates)
      for (const variant of ['herald', 'hub']) {
        const after = figures.get(`${variant} after`);
        const before = figures.get(`${variant} before`);
        if (!after || !before) continue;
        const values = after.map((value, i) => value / before[i]);
        console.log(
          `${variant} after/before events/s median ${median(values).toFixed(2)}x, per round ${values.map(v => v.toFixed(2)).join(' ')}`,
        );
      }
  }
});

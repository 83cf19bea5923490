// npm run bench:pg — notify -> handler over PostgreSQL LISTEN/NOTIFY, events/s
// and latency (p50/p99, send -> handler) at ~100 B and ~4 KB of data, in one run:
//   herald EventsModule  EventPublisher.post -> @OnEvent handler (pg transport)
//   herald durable       the same with pg: { durable: true } (outbox row + wake-up, cursor read)
//   herald PgHub         hub.notify -> consumer hook (no Nest, no envelope)
//   herald PgHub, herald's bytes   the same, its data as much longer as herald's
//                        envelope makes herald's notification (PostgreSQL's
//                        cost per event follows the bytes it carries)
//   nestjs-pg-notify     PgNotifyClient.emit -> @PgNotifyEventPattern handler, 64 in flight
//   node-postgres        one awaited `SELECT pg_notify($1,$2)` per event
// Every variant sends and receives in this process against PG_URL, alone (its
// own connections only, so no other listener reads the notify queue), in
// interleaved rounds (bench/harness). Latency is measured apart, one event at
// a time. Before the ratios: CPU per delivered event of EventsModule against
// PgHub (the transport's parts without the bus, issue 24: goal <= 1.5x),
// durable against plain, and herald against the peer with the ceiling (PgHub)
// measured in the same rounds. The last line is herald (EventsModule) /
// nestjs-pg-notify at 100 B.
// BENCH_ROUNDS, BENCH_SCALE (scales the event counts), BENCH_SMOKE=1,
// BENCH_ONLY=<name part>[,<name part>...] (only the variants whose name holds
// one of them, e.g. `EventsModule` to profile it alone with --cpu-prof; the
// side-by-side lines and comparisons are printed for those that ran),
// BENCH_SIZES=100[,4096] (the data sizes).
import 'reflect-metadata';
import { Controller, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Payload } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { hostname } from 'node:os';
import pg from 'pg';
import { PgNotifyClient, PgNotifyEventPattern, PgNotifyServer } from 'nestjs-pg-notify';
import { EventPublisher, EventsModule, OnEvent, silentLogger } from '../lib/index.js';
import { PgHub } from '../lib/pg/index.js';
import {
  rounds,
  cpuMicros,
  median,
  runBench,
  runMain,
  setting,
  smokeOr,
  type Variant as BenchVariant,
} from './harness/index.js';

const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const SCALE = setting('BENCH_SCALE', 1, 0.02);
const ROUNDS = rounds(3);
const LATENCY_EVENTS = smokeOr(200, 10);
const SIZES = (process.env.BENCH_SIZES || '100,4096').split(',').map(size => {
  const bytes = Number(size);
  if (!Number.isInteger(bytes) || bytes < 30)
    throw new Error(`BENCH_SIZES must list sizes in bytes (>= 30), got ${JSON.stringify(size)}`);
  return bytes;
});
const ONLY = (process.env.BENCH_ONLY ?? '').split(',').filter(part => part !== '');
// herald posts in flight: 4000, or 4 MiB of data at larger sizes (GC pressure).
const WINDOW = 4000;
const WINDOW_BYTES = 4 * 1024 * 1024;
const PEER_WINDOW = 64; // nestjs-pg-notify emits in flight

interface Data {
  t: number;
  s: string;
}

/** Data whose JSON is about `bytes` long. */
const data = (bytes: number): Data => ({
  t: performance.now(),
  s: 'x'.repeat(Math.max(0, bytes - 30)),
});

/** Counts deliveries and their latencies; resolves when `expected` arrived. */
class Sink {
  latencies: number[] = [];
  private expected = 0;
  private done?: () => void;
  arm(expected: number): Promise<void> {
    this.latencies = [];
    this.expected = expected;
    return new Promise(resolve => (this.done = resolve));
  }
  hit(value: Data): void {
    if (this.latencies.length >= this.expected) return;
    this.latencies.push(performance.now() - value.t);
    if (this.latencies.length === this.expected) this.done?.();
  }
}

const sink = new Sink();

@Injectable()
class HeraldHandler {
  @OnEvent('bench', 'tick')
  onTick(value: Data): void {
    sink.hit(value);
  }
}

@Module({
  imports: [
    EventsModule.forRoot({
      transport: 'pg',
      pg: { connectionString: PG_URL, channel: 'herald_bench', applicationName: 'herald-bench' },
      logger: silentLogger,
    }),
  ],
  providers: [HeraldHandler],
})
class HeraldApp {}

/** The durable mode's tables of the bench (emptied after each round, dropped at the end). */
const DURABLE_TABLE = 'herald_bench_outbox';

@Module({
  imports: [
    EventsModule.forRoot({
      transport: 'pg',
      pg: {
        connectionString: PG_URL,
        channel: 'herald_bench_durable',
        applicationName: 'herald-bench-durable',
        durable: { table: DURABLE_TABLE, consumer: 'bench', cleanupIntervalMs: 0 },
      },
      logger: silentLogger,
    }),
  ],
  providers: [HeraldHandler],
})
class HeraldDurableApp {}

async function sql(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

@Controller()
class PeerController {
  @PgNotifyEventPattern('peer_bench')
  onTick(@Payload() value: Data): void {
    sink.hit(value);
  }
}

@Module({ controllers: [PeerController] })
class PeerApp {}

/**
 * How many bytes herald's notification carries beyond PgHub's for the same
 * data: the envelope (`e:{"herald":1,"id":"<uuid>","source":"bench",
 * "event":"tick","origin":"<host>/<pid>/<8>/<n>","at":"<iso>","data":...}`)
 * against PgHub's `e1:...`. The "PgHub, herald's bytes" variant sends data
 * this much longer, so PostgreSQL carries as many bytes per notification as
 * for herald (its cost per event follows the bytes: see bench/README.md).
 */
const ENVELOPE_EXTRA =
  'e:{"herald":1,"id":"","source":"bench","event":"tick","origin":"","at":"","data":}'.length +
  36 +
  `${hostname()}/${process.pid}/xxxxxxxx/1`.length +
  24 -
  'e1:'.length;

interface Variant {
  name: string;
  /** Bytes added to the data of every event (the "herald's bytes" variant). */
  extraBytes?: number;
  /** Events per throughput run at 100 B (a quarter at 4 KB). */
  events: number;
  window: number;
  setup(): Promise<{ send(value: Data): Promise<unknown>; teardown(): Promise<void> }>;
}

/** Starts an EventsModule app and posts through its EventPublisher. */
async function heraldApp(
  module: typeof HeraldApp,
  after?: () => Promise<void>,
): Promise<{ send(value: Data): Promise<unknown>; teardown(): Promise<void> }> {
  const app = await NestFactory.createApplicationContext(module, { logger: false });
  await app.init();
  const publisher = app.get(EventPublisher);
  await publisher.waitUntilReady();
  return {
    send: value => publisher.post('bench', 'tick', value),
    async teardown() {
      await app.close();
      await after?.();
    },
  };
}

/** herald's PgHub alone (no bus) on its own channel, its data `extraBytes` longer than the others'. */
function pgHubVariant(name: string, channel: string, extraBytes?: number): Variant {
  return {
    name,
    events: 40_000,
    window: WINDOW,
    ...(extraBytes !== undefined && { extraBytes }),
    async setup() {
      const hub = new PgHub({
        connectionString: PG_URL,
        applicationName: channel.replaceAll('_', '-'),
      });
      const consumer = hub.consumer(event => {
        if (event.topic !== null) sink.hit(event.value as Data);
      });
      // subscribe() resolves once its LISTEN ran, which needs the hub started.
      await Promise.all([hub.start(), consumer.subscribe(channel)]);
      return {
        send: value => hub.notify(channel, 1n, value),
        teardown: () => hub.stop(),
      };
    },
  };
}

const variants: Variant[] = [
  {
    name: 'herald durable',
    events: 40_000,
    window: WINDOW,
    setup: () => heraldApp(HeraldDurableApp, () => sql(`TRUNCATE ${DURABLE_TABLE}`)),
  },
  {
    name: 'herald EventsModule',
    events: 40_000,
    window: WINDOW,
    setup: () => heraldApp(HeraldApp),
  },
  pgHubVariant('herald PgHub', 'hub_bench'),
  // PgHub with data as much longer as herald's envelope: where the gap is the bytes.
  pgHubVariant("herald PgHub, herald's bytes", 'hub_bench_bytes', ENVELOPE_EXTRA),
  {
    name: 'nestjs-pg-notify',
    events: 3000,
    window: PEER_WINDOW,
    async setup() {
      const server = await NestFactory.createMicroservice(PeerApp, {
        strategy: new PgNotifyServer({
          connection: { connectionString: PG_URL },
          logger: silentLogger,
        }),
        logger: false,
      });
      await server.listen();
      const client = new PgNotifyClient({
        connection: { connectionString: PG_URL },
        logger: silentLogger,
      });
      await client.connectOnBootstrap();
      // The peer's LISTEN cannot be awaited: send probes until one arrives.
      const probe = sink.arm(1);
      let probing = true;
      void probe.then(() => (probing = false));
      while (probing) {
        await lastValueFrom(client.emit('peer_bench', data(10)), { defaultValue: undefined });
        await new Promise(resolve => setTimeout(resolve, 20));
      }
      return {
        send: value => lastValueFrom(client.emit('peer_bench', value), { defaultValue: undefined }),
        async teardown() {
          await client.close();
          await server.close();
        },
      };
    },
  },
  {
    name: 'node-postgres awaited',
    events: 3000,
    window: 1,
    async setup() {
      const sender = new pg.Client({ connectionString: PG_URL });
      const listener = new pg.Client({ connectionString: PG_URL });
      await sender.connect();
      await listener.connect();
      listener.on('notification', message => sink.hit(JSON.parse(message.payload!) as Data));
      await listener.query('LISTEN raw_bench');
      return {
        send: value =>
          sender.query('SELECT pg_notify($1, $2)', ['raw_bench', JSON.stringify(value)]),
        async teardown() {
          await sender.end();
          await listener.end();
        },
      };
    },
  },
];

/** Sends `count` events with `window` in flight; resolves when all arrived. */
async function throughput(
  count: number,
  window: number,
  size: number,
  send: (value: Data) => Promise<unknown>,
): Promise<void> {
  const arrived = sink.arm(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(window, count) }, async () => {
      while (next < count) {
        next++;
        await send(data(size));
      }
    }),
  );
  await arrived;
}

/** One event at a time, send -> handler. @returns latencies in ms */
async function latency(
  count: number,
  size: number,
  send: (value: Data) => Promise<unknown>,
): Promise<number[]> {
  const all: number[] = [];
  for (let i = 0; i < count; i++) {
    const arrived = sink.arm(1);
    await send(data(size));
    await arrived;
    all.push(sink.latencies[0]);
  }
  return all;
}

/** CPU µs per delivered event of each variant's rounds (the harness's own figure, kept for the side-by-side lines). */
const cpuPerEvent = new Map<string, number[]>();
const rates = new Map<string, number[]>();

/** A variant at one size, as the harness runs it: set up per round, warmed up, timed, latency apart. */
function sized(variant: Variant, size: number): BenchVariant {
  const events = Math.max(100, Math.round(variant.events * SCALE * (size > 1000 ? 0.25 : 1)));
  const window =
    variant.window === WINDOW ? Math.min(WINDOW, Math.floor(WINDOW_BYTES / size)) : variant.window;
  const bytes = size + (variant.extraBytes ?? 0);
  return {
    name: `${variant.name} ${size} B`,
    async setup() {
      const { send, teardown } = await variant.setup();
      return {
        warmUp: () =>
          throughput(Math.max(smokeOr(100, 20), Math.round(events / 10)), window, bytes, send),
        run: async () => {
          const cpu = cpuMicros();
          const started = performance.now();
          await throughput(events, window, bytes, send);
          const seconds = (performance.now() - started) / 1000;
          const name = `${variant.name} ${size} B`;
          cpuPerEvent.set(name, [...(cpuPerEvent.get(name) ?? []), (cpuMicros() - cpu) / events]);
          rates.set(name, [...(rates.get(name) ?? []), events / seconds]);
          return { events };
        },
        latency: () => latency(LATENCY_EVENTS, bytes, send),
        teardown,
      };
    },
  };
}

runMain('bench:pg', async () => {
  const chosen = ONLY.length
    ? variants.filter(variant => ONLY.some(part => variant.name.includes(part)))
    : variants;
  if (chosen.length === 0) throw new Error(`BENCH_ONLY=${ONLY.join(',')} names no variant`);
  const ran = new Set(SIZES.flatMap(size => chosen.map(variant => `${variant.name} ${size} B`)));
  const comparisons = [
    ['herald-durable/nestjs-pg-notify at 4 KB', 'herald durable 4096 B', 'nestjs-pg-notify 4096 B'],
    ['herald-durable/nestjs-pg-notify', 'herald durable 100 B', 'nestjs-pg-notify 100 B'],
    ['herald-hub/nestjs-pg-notify', 'herald PgHub 100 B', 'nestjs-pg-notify 100 B'],
    ['herald/nestjs-pg-notify at 4 KB', 'herald EventsModule 4096 B', 'nestjs-pg-notify 4096 B'],
    ['herald/nestjs-pg-notify', 'herald EventsModule 100 B', 'nestjs-pg-notify 100 B'],
  ]
    .filter(([, herald, peer]) => ran.has(herald) && ran.has(peer))
    .map(([label, herald, peer]) => ({ label, herald, peer }));
  await runBench({
    title: 'bench:pg',
    description: `notify -> handler at ${SIZES.join(' and ')} B, herald ${WINDOW} in flight (at most ${WINDOW_BYTES / 1024 / 1024} MiB), nestjs-pg-notify ${PEER_WINDOW}; latency: ${LATENCY_EVENTS} events one at a time`,
    rounds: ROUNDS,
    variants: SIZES.flatMap(size => chosen.map(variant => sized(variant, size))),
    close: () =>
      sql(
        `DROP TABLE IF EXISTS ${DURABLE_TABLE}, ${DURABLE_TABLE}_consumers, ${DURABLE_TABLE}_dead`,
      ),
    extra: async () => sideBySide(ran),
    comparisons,
  });
});

/** Median over the rounds of the per-round ratio a[i] / b[i]. */
function ratio(from: Map<string, number[]>, a: string, b: string): number {
  const x = from.get(a) ?? [];
  const y = from.get(b) ?? [];
  return median(x.map((value, i) => value / y[i]));
}

/** The issue 24 and issue 19 figures, side by side, from the same rounds (those whose variants ran). */
function sideBySide(ran: ReadonlySet<string>): string[] {
  const lines = ['', 'side by side (medians of per-round ratios):'];
  const cpu = (name: string): string => median(cpuPerEvent.get(name) ?? []).toFixed(2);
  for (const size of SIZES) {
    const bus = `herald EventsModule ${size} B`;
    const hub = `herald PgHub ${size} B`;
    const durable = `herald durable ${size} B`;
    const peer = `nestjs-pg-notify ${size} B`;
    if (ran.has(bus) && ran.has(hub))
      lines.push(
        `- ${size} B CPU per delivered event: EventsModule ${cpu(bus)} µs / PgHub ${cpu(hub)} µs = ` +
          `${ratio(cpuPerEvent, bus, hub).toFixed(2)}x (goal <= 1.5x)`,
      );
    if (ran.has(durable) && ran.has(bus))
      lines.push(
        `- ${size} B CPU per delivered event: durable ${cpu(durable)} µs / plain ${cpu(bus)} µs = ` +
          `${ratio(cpuPerEvent, durable, bus).toFixed(2)}x; events/s durable/plain ${ratio(rates, durable, bus).toFixed(2)}x`,
      );
    const sameBytes = `herald PgHub, herald's bytes ${size} B`;
    if (ran.has(bus) && ran.has(sameBytes))
      lines.push(
        `- ${size} B with herald's bytes on the wire: events/s PgHub/herald ${ratio(rates, sameBytes, bus).toFixed(2)}x ` +
          `(PgHub's data ${ENVELOPE_EXTRA} B longer); CPU/event EventsModule ${cpu(bus)} µs / PgHub ${cpu(sameBytes)} µs = ` +
          `${ratio(cpuPerEvent, bus, sameBytes).toFixed(2)}x`,
      );
    if (ran.has(bus) && ran.has(hub) && ran.has(peer))
      lines.push(
        `- ${size} B events/s: herald/peer ${ratio(rates, bus, peer).toFixed(1)}x (goal >= ${size > 1000 ? 10 : 20}x); ` +
          `ceiling PgHub/peer ${ratio(rates, hub, peer).toFixed(1)}x; PgHub/herald ${ratio(rates, hub, bus).toFixed(2)}x (goal <= 1.25x when the goal is out of reach)`,
      );
  }
  return lines;
}

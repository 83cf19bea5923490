// npm run bench:pg — notify -> handler over PostgreSQL LISTEN/NOTIFY, events/s
// and latency (p50/p99, send -> handler) at ~100 B and ~4 KB of data, in one run:
//   herald EventsModule  EventPublisher.post -> @OnEvent handler (pg transport)
//   herald PgHub         hub.notify -> consumer hook (no Nest, no envelope)
//   nestjs-pg-notify     PgNotifyClient.emit -> @PgNotifyEventPattern handler, 64 in flight
//   node-postgres        one awaited `SELECT pg_notify($1,$2)` per event
// Every variant sends and receives in this process against PG_URL, alone (its
// own connections only, so no other listener reads the notify queue), in
// interleaved rounds; the best round counts (the machine is shared). Latency
// is measured apart, one event at a time. The last line is herald
// (EventsModule) / nestjs-pg-notify at 100 B.
import 'reflect-metadata';
import { Controller, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Payload } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import pg from 'pg';
import { PgNotifyClient, PgNotifyEventPattern, PgNotifyServer } from 'nestjs-pg-notify';
import { EventPublisher, EventsModule, OnEvent, silentLogger } from '../lib/index.js';
import { PgHub } from '../lib/pg/index.js';

const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const LATENCY_EVENTS = 200;
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

@Controller()
class PeerController {
  @PgNotifyEventPattern('peer_bench')
  onTick(@Payload() value: Data): void {
    sink.hit(value);
  }
}

@Module({ controllers: [PeerController] })
class PeerApp {}

interface Variant {
  name: string;
  /** Events per throughput run at 100 B (a quarter at 4 KB). */
  events: number;
  window: number;
  setup(): Promise<{ send(value: Data): Promise<unknown>; teardown(): Promise<void> }>;
}

const variants: Variant[] = [
  {
    name: 'herald EventsModule',
    events: 40_000,
    window: WINDOW,
    async setup() {
      const app = await NestFactory.createApplicationContext(HeraldApp, { logger: false });
      await app.init();
      const publisher = app.get(EventPublisher);
      await publisher.waitUntilReady();
      return {
        send: value => publisher.post('bench', 'tick', value),
        teardown: () => app.close(),
      };
    },
  },
  {
    name: 'herald PgHub',
    events: 40_000,
    window: WINDOW,
    async setup() {
      const hub = new PgHub({ connectionString: PG_URL, applicationName: 'hub-bench' });
      const consumer = hub.consumer(event => {
        if (event.topic !== null) sink.hit(event.value as Data);
      });
      // subscribe() resolves once its LISTEN ran, which needs the hub started.
      await Promise.all([hub.start(), consumer.subscribe('hub_bench')]);
      return {
        send: value => hub.notify('hub_bench', 1n, value),
        teardown: () => hub.stop(),
      };
    },
  },
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

interface Figure {
  rate: number;
  p50: number;
  p99: number;
}

/** Sends `count` events with `window` in flight; resolves when all arrived. @returns events/s */
async function throughput(
  count: number,
  window: number,
  size: number,
  send: (value: Data) => Promise<unknown>,
): Promise<number> {
  (globalThis as { gc?: () => void }).gc?.();
  const arrived = sink.arm(count);
  const start = performance.now();
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
  return count / ((performance.now() - start) / 1000);
}

/** One event at a time, send -> handler. @returns sorted latencies in ms */
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
  return all.sort((a, b) => a - b);
}

async function main(): Promise<void> {
  const results: Record<string, Record<number, Figure>> = {};
  for (const size of [100, 4096]) {
    for (let round = 0; round < ROUNDS; round++) {
      for (const variant of variants) {
        if (process.env.BENCH_DEBUG) console.log(`${variant.name} ${size} B round ${round}`);
        const { send, teardown } = await variant.setup();
        const events = Math.max(100, Math.round(variant.events * SCALE * (size > 1000 ? 0.25 : 1)));
        const window =
          variant.window === WINDOW
            ? Math.min(WINDOW, Math.floor(WINDOW_BYTES / size))
            : variant.window;
        await throughput(Math.max(100, Math.round(events / 10)), window, size, send); // warm-up
        const rate = await throughput(events, window, size, send);
        const lat = await latency(LATENCY_EVENTS, size, send);
        await teardown();
        const at = (q: number): number => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))];
        const best = results[variant.name]?.[size];
        if (!best || rate > best.rate)
          (results[variant.name] ??= {})[size] = { rate, p50: at(0.5), p99: at(0.99) };
      }
    }
  }
  const f = (n: number): string => n.toFixed(2).padStart(7);
  console.log(
    `node ${process.version}, best of ${ROUNDS} rounds; latency: ${LATENCY_EVENTS} events one at a time`,
  );
  for (const size of [100, 4096]) {
    for (const variant of variants) {
      const figure = results[variant.name][size];
      console.log(
        `${variant.name.padEnd(22)} ${String(size).padStart(5)} B  ${Math.round(figure.rate).toLocaleString('en-US').padStart(9)} events/s  p50 ${f(figure.p50)} ms  p99 ${f(figure.p99)} ms`,
      );
    }
  }
  const ratio = (size: number): string =>
    (results['herald EventsModule'][size].rate / results['nestjs-pg-notify'][size].rate).toFixed(1);
  console.log(`herald/nestjs-pg-notify at 4 KB = ${ratio(4096)}x`);
  console.log(`herald/nestjs-pg-notify = ${ratio(100)}x`);
}

main().catch(error => {
  console.error(error);
  process.exit(1);
});

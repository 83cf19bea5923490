// npm run bench:microservices — events/s of the microservice path (client
// emit -> server @EventPattern) beside the EventsModule path (post -> @OnEvent)
// over the same server, and against the peers, ~100-byte events, in one run:
//   redis EventsModule     EventsModule.forRoot({ transport: 'redis' }): post -> @OnEvent
//   redis microservice     RedisStreamsClient.emit -> RedisStreamsServer @EventPattern (consumer group, ack after handler)
//   nest-redis             @nestjs/microservices Redis transport (pub/sub): emit -> @EventPattern
//   pg EventsModule        EventsModule.forRoot({ transport: 'pg' }): post -> @OnEvent
//   pg microservice        PgNotifyClient.emit -> PgNotifyServer @EventPattern
//   nestjs-pg-notify       its PgNotifyClient.emit -> @PgNotifyEventPattern (64 in flight, as bench:pg)
// Each variant sends and receives in this process on its own connections, in
// interleaved rounds (bench/harness). The last line is the redis microservice
// against nest-redis. Env: REDIS_URL, PG_URL, BENCH_SCALE (default 1),
// BENCH_ROUNDS (default 3), BENCH_ONLY=<name part>, BENCH_SMOKE=1.
import 'reflect-metadata';
import { performance } from 'node:perf_hooks';
import { Controller, Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  ClientProxyFactory,
  EventPattern,
  Payload,
  Transport,
  type ClientProxy,
  type MicroserviceOptions,
} from '@nestjs/microservices';
import { Redis } from 'ioredis';
import {
  PgNotifyClient as PeerClient,
  PgNotifyEventPattern,
  PgNotifyServer as PeerServer,
} from 'nestjs-pg-notify';
import { lastValueFrom } from 'rxjs';
import { EventPublisher, EventsModule, OnEvent, silentLogger } from '../lib/index.js';
import {
  PG_NOTIFY_TRANSPORT,
  PgNotifyClient,
  PgNotifyServer,
} from '../lib/pg/microservice/index.js';
import {
  REDIS_STREAMS_TRANSPORT,
  RedisStreamsClient,
  RedisStreamsServer,
} from '../lib/redis/microservice/index.js';
import {
  rounds,
  runBench,
  runMain,
  setting,
  type Comparison,
  type Variant as BenchVariant,
} from './harness/index.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const SCALE = setting('BENCH_SCALE', 1, 0.02);
const ROUNDS = rounds(3);
const RUN = `${process.pid}_${Date.now().toString(36)}`;
const { hostname: REDIS_HOST, port: REDIS_PORT } = new URL(REDIS_URL);

interface Data {
  t: number;
  name: string;
  customer: string;
  amount: number;
  tags: string[];
}

/** About 100 bytes of JSON. */
const data = (i: number): Data => ({
  t: performance.now(),
  name: 'order-created',
  customer: `customer-${i % 1000}`,
  amount: 1234.5,
  tags: ['priority', 'web', 'eu'],
});

/** Counts deliveries; resolves when `expected` arrived. */
class Sink {
  private count = 0;
  private expected = 0;
  private done?: () => void;
  arm(expected: number): Promise<void> {
    this.count = 0;
    this.expected = expected;
    return new Promise(resolve => (this.done = resolve));
  }
  hit(): void {
    if (++this.count === this.expected) this.done?.();
  }
}

const sink = new Sink();

// ------------------------------------------------------------- handlers

@Injectable()
class HeraldHandler {
  @OnEvent('bench', 'tick')
  onTick(): void {
    sink.hit();
  }
}

@Controller()
class RedisMsController {
  @EventPattern('bench.tick', REDIS_STREAMS_TRANSPORT)
  onTick(@Payload() _value: Data): void {
    sink.hit();
  }
}
@Module({ controllers: [RedisMsController] })
class RedisMsApp {}

@Controller()
class PgMsController {
  @EventPattern('ms_bench_tick', PG_NOTIFY_TRANSPORT)
  onTick(@Payload() _value: Data): void {
    sink.hit();
  }
}
@Module({ controllers: [PgMsController] })
class PgMsApp {}

@Controller()
class NestRedisController {
  @EventPattern('bench.tick', Transport.REDIS)
  onTick(@Payload() _value: Data): void {
    sink.hit();
  }
}
@Module({ controllers: [NestRedisController] })
class NestRedisApp {}

@Controller()
class PeerController {
  @PgNotifyEventPattern('peer_ms_bench')
  onTick(@Payload() _value: Data): void {
    sink.hit();
  }
}
@Module({ controllers: [PeerController] })
class PeerApp {}

// ------------------------------------------------------------- variants

interface Session {
  send(i: number): Promise<unknown>;
  teardown(): Promise<void>;
}

interface Variant {
  name: string;
  events: number;
  window: number;
  setup(): Promise<Session>;
}

let sessions = 0;

async function eventsModule(transport: 'redis' | 'pg'): Promise<Session> {
  const stream = `bench:ms-events:${RUN}:${++sessions}`;
  @Module({
    imports: [
      EventsModule.forRoot(
        transport === 'redis'
          ? { transport, redis: { url: REDIS_URL, stream, maxLen: 0 }, logger: silentLogger }
          : {
              transport,
              pg: { connectionString: PG_URL, channel: 'ms_bench_events' },
              logger: silentLogger,
            },
      ),
    ],
    providers: [HeraldHandler],
  })
  class HeraldApp {}
  const app: INestApplicationContext = await NestFactory.createApplicationContext(HeraldApp, {
    logger: false,
  });
  await app.init();
  const publisher = app.get(EventPublisher);
  await publisher.waitUntilReady();
  return {
    send: i => publisher.post('bench', 'tick', data(i)),
    async teardown() {
      await app.close();
      if (transport === 'redis') await deleteKeys(stream);
    },
  };
}

const emitted = (client: ClientProxy, pattern: string, i: number): Promise<unknown> =>
  lastValueFrom(client.emit(pattern, data(i)), { defaultValue: undefined });

const variants: Variant[] = [
  {
    name: 'redis EventsModule',
    events: 40_000,
    window: 1000,
    setup: () => eventsModule('redis'),
  },
  {
    name: 'redis microservice',
    events: 40_000,
    window: 1000,
    async setup() {
      const streamPrefix = `bench:ms:${RUN}:${++sessions}:`;
      const server = await NestFactory.createMicroservice(RedisMsApp, {
        strategy: new RedisStreamsServer({ url: REDIS_URL, streamPrefix, logger: silentLogger }),
        logger: false,
      });
      await server.listen();
      const client = new RedisStreamsClient({ url: REDIS_URL, streamPrefix, logger: silentLogger });
      await client.connect();
      return {
        send: i => emitted(client, 'bench.tick', i),
        async teardown() {
          await client.close();
          await server.close();
          await deleteKeys(`${streamPrefix}bench.tick`);
        },
      };
    },
  },
  {
    name: 'nest-redis',
    events: 40_000,
    window: 1000,
    async setup() {
      const options = { host: REDIS_HOST, port: Number(REDIS_PORT || 6379) };
      const server = await NestFactory.createMicroservice<MicroserviceOptions>(NestRedisApp, {
        transport: Transport.REDIS,
        options,
        logger: false,
      });
      await server.listen();
      const client = ClientProxyFactory.create({ transport: Transport.REDIS, options });
      await client.connect();
      return {
        send: i => emitted(client, 'bench.tick', i),
        async teardown() {
          await client.close();
          await server.close();
        },
      };
    },
  },
  {
    name: 'pg EventsModule',
    events: 40_000,
    window: 4000,
    setup: () => eventsModule('pg'),
  },
  {
    name: 'pg microservice',
    events: 40_000,
    window: 4000,
    async setup() {
      const server = await NestFactory.createMicroservice(PgMsApp, {
        strategy: new PgNotifyServer({ connectionString: PG_URL, logger: silentLogger }),
        logger: false,
      });
      await server.listen();
      const client = new PgNotifyClient({ connectionString: PG_URL, logger: silentLogger });
      await client.connect();
      return {
        send: i => emitted(client, 'ms_bench_tick', i),
        async teardown() {
          await client.close();
          await server.close();
        },
      };
    },
  },
  {
    name: 'nestjs-pg-notify',
    events: 3000,
    window: 64,
    async setup() {
      const server = await NestFactory.createMicroservice(PeerApp, {
        strategy: new PeerServer({
          connection: { connectionString: PG_URL },
          logger: silentLogger,
        }),
        logger: false,
      });
      await server.listen();
      const client = new PeerClient({
        connection: { connectionString: PG_URL },
        logger: silentLogger,
      });
      await client.connectOnBootstrap();
      // The peer's LISTEN cannot be awaited: send probes until one arrives.
      const probe = sink.arm(1);
      let probing = true;
      void probe.then(() => (probing = false));
      while (probing) {
        await emitted(client, 'peer_ms_bench', 0);
        await new Promise(resolve => setTimeout(resolve, 20));
      }
      return {
        send: i => emitted(client, 'peer_ms_bench', i),
        async teardown() {
          await client.close();
          await server.close();
        },
      };
    },
  },
];

async function deleteKeys(...keys: string[]): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}

/** Sends `count` events with `window` in flight; resolves when all arrived. */
async function throughput(
  count: number,
  window: number,
  send: (i: number) => Promise<unknown>,
): Promise<void> {
  const arrived = sink.arm(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(window, count) }, async () => {
      while (next < count) await send(next++);
    }),
  );
  await arrived;
}

/** A variant as the harness runs it: set up per round, warmed up, timed. */
function benchVariant(variant: Variant): BenchVariant {
  const events = Math.max(100, Math.round(variant.events * SCALE));
  return {
    name: variant.name,
    async setup() {
      const session = await variant.setup();
      return {
        warmUp: () => throughput(Math.min(500, events), variant.window, session.send),
        run: async () => {
          await throughput(events, variant.window, session.send);
          return { events };
        },
        teardown: () => session.teardown(),
      };
    },
  };
}

runMain('bench:microservices', async () => {
  // BENCH_ONLY=<substring> runs only the matching variants (for profiling).
  const only = process.env.BENCH_ONLY;
  const chosen = only ? variants.filter(variant => variant.name.includes(only)) : variants;
  const comparisons: Comparison[] = [
    {
      label: 'herald-redis-ms/herald-redis-events',
      herald: 'redis microservice',
      peer: 'redis EventsModule',
    },
    { label: 'herald-pg-ms/herald-pg-events', herald: 'pg microservice', peer: 'pg EventsModule' },
    { label: 'herald-pg-ms/nestjs-pg-notify', herald: 'pg microservice', peer: 'nestjs-pg-notify' },
    { label: 'herald/nest-redis', herald: 'redis microservice', peer: 'nest-redis' },
  ];
  await runBench({
    title: 'bench:microservices',
    description: `~100 B events, ${chosen.map(v => `${v.name} ${Math.max(100, Math.round(v.events * SCALE))} events/${v.window} in flight`).join(', ')}`,
    rounds: ROUNDS,
    variants: chosen.map(benchVariant),
    comparisons: comparisons.filter(
      c => chosen.some(v => v.name === c.herald) && chosen.some(v => v.name === c.peer),
    ),
  });
});

import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { filter, firstValueFrom } from 'rxjs';
import { z } from 'zod';
import {
  EventBus,
  EventPublisher,
  EventsModule,
  LocalTransport,
  OnEvent,
  silentLogger,
  type Envelope,
  type EventSchemas,
  type HeraldEvent,
  type TransportStatus,
} from '../../../lib/index.js';
import {
  StreamPublisher,
  encodeEnvelopeEntry,
  fieldsToRecord,
  type RedisTransportOptions,
} from '../../../lib/redis/index.js';
import { PrivateRedis } from '../../helpers/private-redis.js';
import { RedisBuses } from './redis-buses.js';
import { killAllChildren, spawnNode } from '../../helpers/processes.js';
import { REDIS_URL, hostPort, uniqueName } from '../../helpers/services.js';
import { TcpProxy } from '../../helpers/tcp-proxy.js';
import { waitFor } from '../../helpers/wait-for.js';

const admin = new Redis(REDIS_URL);
const redis = new RedisBuses(admin);
const { buses, keys } = redis;

async function instance(options: RedisTransportOptions, schemas?: EventSchemas): Promise<EventBus> {
  return redis.instance(options, { schemas });
}

const stream = (prefix: string): string => redis.stream(prefix);

afterEach(async () => {
  await redis.closeBuses();
  await killAllChildren();
  await redis.deleteKeys();
});

afterAll(() => admin.disconnect());

describe('redis transport', () => {
  it('broadcast: each of three instances handles every event; work queue: each event is handled by one of three', async () => {
    const wide = stream('broadcast');
    const queue = stream('queue');
    const group = uniqueName('workers');
    const everyone = [
      await instance({ stream: wide }),
      await instance({ stream: wide }),
      await instance({ stream: wide }),
    ];
    const workers = [
      await instance({ stream: queue, mode: 'work-queue', group }),
      await instance({ stream: queue, mode: 'work-queue', group }),
      await instance({ stream: queue, mode: 'work-queue', group }),
    ];
    const broadcastSeen = everyone.map(() => [] as number[]);
    const queueSeen = workers.map(() => [] as number[]);
    everyone.forEach((bus, i) =>
      bus.register(data => void broadcastSeen[i].push(data as number), 'news'),
    );
    workers.forEach((bus, i) =>
      bus.register(data => void queueSeen[i].push(data as number), 'jobs'),
    );
    const total = 60;
    await Promise.all(
      Array.from({ length: total }, (_, n) => everyone[n % 3].post('news', 'item', n)),
    );
    await Promise.all(
      Array.from({ length: total }, (_, n) => workers[n % 3].post('jobs', 'run', n)),
    );
    await waitFor(() => broadcastSeen.every(seen => seen.length === total));
    await waitFor(() => queueSeen.flat().length >= total);
    for (const seen of broadcastSeen)
      expect([...seen].sort((a, b) => a - b)).toEqual([...Array(total).keys()]);
    await waitFor(async () => (await admin.xpending(queue, group))[0] === 0);
    expect(queueSeen.flat().sort((a, b) => a - b)).toEqual([...Array(total).keys()]);
    // A per-process broadcast group goes with its instance.
    const groupsBefore = ((await admin.xinfo('GROUPS', wide)) as unknown[]).length;
    expect(groupsBefore).toBe(3);
    await everyone[0].close();
    expect(((await admin.xinfo('GROUPS', wide)) as unknown[]).length).toBe(2);
  });

  it.each(['one-field', 'two-field'] as const)(
    'writes each entry in the herald layout (%s), the header byte for byte JSON.stringify of its members',
    async heraldEntry => {
      // Two-field: the publisher sends a common header's members after the id once per run (Redis
      // writes them). What lands in the stream must be the layout readers read.
      const name = stream('layout');
      const bus = await instance({ stream: name, heraldEntry });
      const seen: string[] = [];
      bus.register((_data, event) => void seen.push(event.id));
      const receipts = [];
      for (const [source, event, options] of [
        ['orders', 'created', {}],
        ['orders', 'created', {}],
        ['bills', 'paid', {}],
        ['orders', 'created', { key: [7n, -1n] }],
        ['orders', 'created', { unique: 'u-1', headers: { 'x-a': 'b"c' } }],
        ['q"uote', 'é', {}],
      ] as const)
        receipts.push(bus.post(source, event, { n: receipts.length }, options));
      const posted = await Promise.all(receipts);
      await waitFor(() => seen.length === posted.length);
      const entries = await admin.xrange(name, '-', '+');
      expect(entries.map(([id]) => id)).toEqual(posted.map(receipt => receipt.ref));
      const headers = entries.map(([, fields], i) => {
        expect(fields[0]).toBe('herald');
        const [text, payload] =
          heraldEntry === 'one-field'
            ? [
                fields[1].slice(0, fields[1].indexOf('\n')),
                fields[1].slice(fields[1].indexOf('\n') + 1),
              ]
            : [fields[1], fields[3]];
        expect(fields).toHaveLength(heraldEntry === 'one-field' ? 2 : 4);
        if (heraldEntry === 'two-field') expect(fields[2]).toBe('payload');
        const header = JSON.parse(text) as unknown[];
        expect(text).toBe(JSON.stringify(header));
        expect(header[0]).toBe(posted[i].id);
        expect(payload).toBe(JSON.stringify({ n: i }));
        return header;
      });
      expect(headers[3]).toEqual(expect.arrayContaining(['orders', 'created', '7,-1']));
      expect(headers[5].slice(1, 3)).toEqual(['q"uote', 'é']);
      expect([...seen].sort()).toEqual(posted.map(receipt => receipt.id).sort());
    },
  );

  it('survives a cut connection: status goes down and back up, posts made meanwhile are delivered', async () => {
    const { host, port } = hostPort(REDIS_URL);
    const proxy = new TcpProxy(host, port);
    await proxy.start();
    try {
      const name = stream('cut');
      const bus = await instance({
        url: proxy.url(REDIS_URL),
        stream: name,
        drainInitialIntervalMs: 20,
      });
      const got: number[] = [];
      const states: TransportStatus['state'][] = [];
      bus.status$.subscribe(status => states.push(status.state));
      bus.register(data => void got.push(data as number), 'cut');
      await bus.post('cut', 'x', 0);
      await waitFor(() => got.length === 1);
      proxy.cut();
      await firstValueFrom(bus.status$.pipe(filter(status => status.state !== 'connected')));
      const during = Array.from({ length: 20 }, (_, i) => bus.post('cut', 'x', i + 1));
      proxy.restore();
      await Promise.all(during);
      await firstValueFrom(bus.status$.pipe(filter(status => status.state === 'connected')));
      await waitFor(() => new Set(got).size === 21);
      expect([...new Set(got)].sort((a, b) => a - b)).toEqual([...Array(21).keys()]);
      expect(states[0]).toBe('connected');
      expect(states).toContain('reconnecting');
      expect(states[states.length - 1]).toBe('connected');
    } finally {
      await proxy.close();
    }
  });

  it('a consumer SIGKILLed mid-batch: every event is handled at least once (the rest is claimed by another)', async () => {
    const name = stream('killed');
    const group = uniqueName('g');
    const env = { REDIS_URL, STREAM: name, GROUP: group, MIN_IDLE_MS: '400', HANDLER_MS: '3' };
    const first = spawnNode('test/fixtures/redis/work-queue-consumer.ts', { env });
    await first.waitForLine('ready');
    const total = 300;
    const publisher = new StreamPublisher<Envelope>({
      url: REDIS_URL,
      stream: name,
      encode: encodeEnvelopeEntry,
      logger: silentLogger,
    });
    const maker = new EventBus({ transport: new LocalTransport(), logger: silentLogger });
    for (let n = 0; n < total; n++) publisher.publish(maker.envelope('jobs', 'run', n));
    await publisher.close();
    await waitFor(() => first.count('handled ') >= 40);
    await first.kill('SIGKILL');
    const handledByFirst = new Set(
      first.lines.filter(l => l.startsWith('handled ')).map(l => Number(l.slice(8))),
    );
    expect(handledByFirst.size).toBeLessThan(total);
    const second = spawnNode('test/fixtures/redis/work-queue-consumer.ts', { env });
    const all = (): Set<number> =>
      new Set(
        [...first.lines, ...second.lines]
          .filter(l => l.startsWith('handled '))
          .map(l => Number(l.slice(8))),
      );
    await waitFor(() => all().size === total, { timeoutMs: 30_000 });
    expect([...all()].sort((a, b) => a - b)).toEqual([...Array(total).keys()]);
    await waitFor(async () => (await admin.xpending(name, group))[0] === 0);
  });

  it('handles every event posted across a restart of Redis (private, appendonly), at least once', async () => {
    const server = await new PrivateRedis().start();
    try {
      const bus = await instance({
        url: server.url,
        stream: 'restart',
        mode: 'work-queue',
        group: 'g',
        drainInitialIntervalMs: 20,
      });
      const seen = new Set<number>();
      bus.register(data => void seen.add(data as number), 'restart');
      const posts: Promise<unknown>[] = [];
      for (let n = 0; n < 100; n++) posts.push(bus.post('restart', 'n', n));
      await waitFor(() => seen.size >= 50);
      await server.restart();
      for (let n = 100; n < 200; n++) posts.push(bus.post('restart', 'n', n));
      await Promise.all(posts);
      await waitFor(() => seen.size === 200, { timeoutMs: 30_000 });
      await firstValueFrom(bus.status$.pipe(filter(status => status.state === 'connected')));
      // The reader did lose its connection (and came back on its own).
      expect(bus.stats().transport['subscriber.readErrors']).toBeGreaterThanOrEqual(1);
    } finally {
      await Promise.all(buses.splice(0).map(bus => bus.close({ timeoutMs: 2000 })));
      await server.stop();
    }
  });

  it("reads ahead within the bus's buffer by default: readCount 4000 behind a stuck handler holds 10240 entries, drops none, then handles every one once", async () => {
    const name = stream('within-pending');
    const group = uniqueName('g');
    const writer = await redis.instance({ stream: name, intake: false });
    for (let i = 0; i < 12_000; i += 1000)
      await Promise.all(
        Array.from({ length: 1000 }, (_, j) => writer.post('orders', 'created', i + j)),
      );
    const reader = await redis.instance({
      stream: name,
      mode: 'work-queue',
      group,
      startId: '0',
      readCount: 4000,
    });
    let release!: () => void;
    const stuck = new Promise<void>(resolve => (release = resolve));
    const seen = new Set<unknown>();
    reader.register(data => {
      seen.add(data);
      return seen.size === 1 ? stuck : undefined;
    });
    // 3 x 4000 would be 12000, past the bus's 10240: the default stops at its buffer.
    await waitFor(async () => (await admin.xpending(name, group))[0] === 10_240);
    for (let check = 0; check < 5; check++) {
      expect((await admin.xpending(name, group))[0]).toBe(10_240);
      expect(reader.stats().dropped).toBe(0);
    }
    release();
    await waitFor(() => seen.size === 12_000);
    await waitFor(async () => (await admin.xpending(name, group))[0] === 0);
    expect(reader.stats()).toMatchObject({ dropped: 0, handled: 12_000 });
  });

  it('works under EventsModule.forRoot({ transport: "redis" }) with @OnEvent handlers', async () => {
    const name = stream('nest');
    const seen: string[] = [];

    @Injectable()
    class Audit {
      @OnEvent()
      any(_data: unknown, event: HeraldEvent): void {
        seen.push(`any:${event.source}/${event.event}`);
      }

      @OnEvent('orders', 'created')
      created(data: { id: number }): void {
        seen.push(`created:${data.id}`);
      }
    }

    @Module({
      imports: [
        EventsModule.forRoot({
          transport: 'redis',
          redis: { url: REDIS_URL, stream: name, blockMs: 100 },
          logger: silentLogger,
        }),
      ],
      providers: [Audit],
    })
    class AppModule {}

    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    try {
      const publisher = app.get(EventPublisher);
      const receipt = await publisher.post('orders', 'created', { id: 7 });
      expect(receipt.ref).toMatch(/^\d+-\d+$/);
      await waitFor(() => seen.length === 2);
      expect(seen.sort()).toEqual(['any:orders/created', 'created:7']);
      const [[id]] = await admin.xrange(name, '-', '+');
      expect(id).toBe(receipt.ref);
    } finally {
      await app.close();
    }
  });
});

// Issue 27 point 3: an event its schema refuses on arrival (posted by a peer
// without the schema) is dead-lettered at once on a group, never retried as
// a handler failure, never handed to a handler.
describe('redis transport, schemas on arrival', () => {
  it('work queue: an invalid arrival is dead-lettered at once; a valid one is handled with the output', async () => {
    const name = uniqueName('schemas');
    const group = uniqueName('g');
    keys.push(name, `${name}:dead`);
    const schemas = { orders: { paid: z.object({ amount: z.coerce.number() }) } };
    const worker = await instance(
      { stream: name, mode: 'work-queue', group, maxDeliveries: 5 },
      schemas,
    );
    const seen: unknown[] = [];
    worker.register(data => void seen.push(data), 'orders', 'paid');
    // A peer without the schema: its post is not checked before sending.
    const peer = await instance({ stream: name, mode: 'work-queue', group: uniqueName('other') });

    await peer.post('orders', 'paid', { amount: 'not a number' });
    await waitFor(async () => (await admin.xlen(`${name}:dead`)) === 1);
    const [[, fields]] = await admin.xrange(`${name}:dead`, '-', '+');
    expect(fieldsToRecord(fields).dead_reason).toMatch(
      /^undecodable: .*orders\/paid data is invalid at data\.amount/,
    );
    expect(worker.stats()).toMatchObject({ invalid: 1, failed: 0, handled: 0 });
    // Dead-lettered on the first delivery: no retry as a handler failure.
    expect(worker.stats().transport).toMatchObject({ 'subscriber.undecodable': 1 });
    await waitFor(async () => (await admin.xpending(name, group))[0] === 0);

    await peer.post('orders', 'paid', { amount: '12' });
    await waitFor(() => seen.length === 1);
    expect(seen).toEqual([{ amount: 12 }]);
    expect(await admin.xlen(`${name}:dead`)).toBe(1);
  });
});

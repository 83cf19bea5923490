import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPattern, MessagePattern } from '@nestjs/microservices';
import { Cluster } from 'ioredis';
import { firstValueFrom } from 'rxjs';
import { EventBus, InvalidOptionsError, silentLogger } from '../../../lib/index.js';
import {
  RedisTransport,
  StreamPublisher,
  StreamSubscriber,
  fieldsToRecord,
} from '../../../lib/redis/index.js';
import { RedisStreamsClient, RedisStreamsServer } from '../../../lib/redis/microservice/index.js';
import { memoryLogger } from '../../helpers/memory-logger.js';
import { PrivateRedisCluster } from '../../helpers/private-redis-cluster.js';
import { waitFor } from '../../helpers/wait-for.js';

// Issue 28: the redis transport, StreamPublisher, StreamSubscriber (fan-out
// and groups), RedisStreamsServer/Client and unique on a real Redis Cluster
// (3 masters + 3 replicas from redis-server binaries).

const cluster = new PrivateRedisCluster();
let admin: Cluster;
/** Hash tags whose slots sit on three different masters. */
let tags: string[] = [];
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  await cluster.start();
  admin = new Cluster(cluster.startupNodes);
  const byMaster = new Map<number, string>();
  for (let i = 0; byMaster.size < 3; i++) {
    const tag = `t${i}`;
    const { master } = await cluster.ownerOf(await cluster.slotOf(`{${tag}}`));
    if (!byMaster.has(master.port)) byMaster.set(master.port, tag);
  }
  tags = [...byMaster.values()];
}, 60_000);

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

afterAll(async () => {
  admin?.disconnect();
  await cluster.stop();
});

/** One seed only, a node that owns none of `tag`'s slot: every command starts with a MOVED. */
async function otherSeed(tag: string): Promise<{ host: string; port: number }[]> {
  const { master } = await cluster.ownerOf(await cluster.slotOf(`{${tag}}`));
  const other = cluster.nodes.find(node => node.port !== master.port)!;
  return [{ host: '127.0.0.1', port: other.port }];
}

describe('Redis Cluster', () => {
  it('refuses stream names without a hash tag in cluster mode, naming the stream', () => {
    const nodes = cluster.startupNodes;
    expect(() => new RedisTransport({ cluster: nodes, stream: 'orders' })).toThrow(
      InvalidOptionsError,
    );
    expect(() => new RedisTransport({ cluster: nodes })).toThrow(
      /stream must be a name with a hash tag in cluster mode, e.g. '\{herald:events\}'.*"herald:events"/,
    );
    expect(
      () =>
        new RedisTransport({
          cluster: nodes,
          layout: 'mainflux',
          streams: ['{a}', 'b'],
          instance: 'x',
        }),
    ).toThrow(/"b", a string/);
    expect(() => new StreamPublisher({ cluster: nodes, stream: 'orders' })).toThrow(/"orders"/);
    expect(() => new StreamSubscriber({ cluster: nodes, stream: 'orders', name: 'n' })).toThrow(
      /"orders"/,
    );
    expect(
      () =>
        new StreamSubscriber({
          cluster: nodes,
          stream: '{orders}',
          name: 'n',
          group: { name: 'g', deadLetterStream: 'dead' },
        }),
    ).toThrow(/group.deadLetterStream must be a name with the stream's hash tag \{orders\}/);
    // Keys are never renamed: a tagged name is used as given.
    expect(new RedisTransport({ cluster: nodes, stream: 'shop:{orders}' }).stream).toBe(
      'shop:{orders}',
    );
  });

  it('StreamPublisher and StreamSubscriber (fan-out and groups) work on streams of all three masters, from a seed that owns none of them (MOVED followed)', async () => {
    const results: string[][] = [];
    for (const tag of tags) {
      const stream = `ev:{${tag}}`;
      const seeds = await otherSeed(tag);
      const logger = memoryLogger();
      const pub = new StreamPublisher<string>({
        cluster: seeds,
        stream,
        logger,
        encode: v => ['v', v],
      });
      const fan = new StreamSubscriber({
        cluster: seeds,
        stream,
        name: `f-${tag}`,
        logger,
        blockMs: 100,
      });
      const group = new StreamSubscriber({
        cluster: seeds,
        // Asked for, and off on this package's connections (ioredis's drops call()'s command name).
        clusterOptions: { enableAutoPipelining: true },
        stream,
        name: `g-${tag}`,
        logger,
        blockMs: 100,
        group: { name: 'g', maxDeliveries: 1, nackRetryDelayMs: 5 },
      });
      closers.push(
        () => pub.close(),
        () => fan.close({ timeoutMs: 500 }),
        () => group.close({ timeoutMs: 500 }),
      );
      const fanSeen: string[] = [];
      const groupSeen: string[] = [];
      await fan.subscribe(m => void fanSeen.push(m.fields.v));
      await group.subscribe(m => {
        if (m.fields.v === 'poison') throw new Error('poison');
        groupSeen.push(m.fields.v);
      });
      const ids = await pub.publishAll(['a', 'b', 'poison', 'c']);
      expect(ids.every(id => typeof id === 'string')).toBe(true);
      await waitFor(() => fanSeen.length === 4 && groupSeen.length === 3);
      // Dead-lettering is one MULTI (XADD <stream>:dead + XACK): same slot thanks to the tag.
      await waitFor(async () => (await admin.xlen(`${stream}:dead`)) === 1);
      const [[, dead]] = await admin.xrange(`${stream}:dead`, '-', '+');
      expect(fieldsToRecord(dead)).toMatchObject({ v: 'poison', dead_group: 'g' });
      expect(pub.stats()).toMatchObject({ clusterRefused: 0, written: 4 });
      expect(logger.lines.filter(line => /^(warn|error) /.test(line))).toEqual([
        expect.stringMatching(/^warn redis stream-dead-lettered: /),
      ]);
      results.push(groupSeen);
      await admin.del(stream, `${stream}:dead`, fan.cursorKey);
    }
    expect(results).toEqual([
      ['a', 'b', 'c'],
      ['a', 'b', 'c'],
      ['a', 'b', 'c'],
    ]);
  });

  it('the transport in work-queue mode on a cluster, unique run once across instances, and an ioredis Cluster the app owns (seeded with a node that does not own the stream)', async () => {
    // The app's Cluster knows one seed, a node that does not own the stream's slot.
    const appCluster = new Cluster(await otherSeed(tags[0]));
    const stream = `q:{${tags[0]}}`;
    const buses: EventBus[] = [];
    const seen: number[] = [];
    const uniques: string[] = [];
    for (let i = 0; i < 2; i++) {
      const bus = new EventBus({
        transport: new RedisTransport({
          cluster: appCluster,
          stream,
          mode: 'work-queue',
          group: 'w',
          blockMs: 100,
          // The claim keys embed the stream name, so its tag: they share the stream's slot.
          uniquePrefix: 'u',
        }),
        logger: silentLogger,
      });
      bus.register(data => void seen.push(data as number), 'jobs', 'n');
      bus.register(data => void uniques.push(data as string), 'jobs', 'once');
      await bus.connect();
      bus.start();
      buses.push(bus);
    }
    closers.push(async () => {
      await Promise.all(buses.map(b => b.close({ timeoutMs: 1000 })));
      await admin.del(stream, `${stream}:dead`);
    });
    await Promise.all(Array.from({ length: 50 }, (_, i) => buses[i % 2].post('jobs', 'n', i)));
    const keys = Array.from({ length: 6 }, (_, i) => `k${i}`);
    for (const key of keys) {
      await buses[0].post('jobs', 'once', key, { unique: key });
      await buses[1].post('jobs', 'once', key, { unique: key });
    }
    await waitFor(() => seen.length === 50 && uniques.length === 6);
    expect(new Set(seen).size).toBe(50);
    expect(uniques.sort()).toEqual(keys);
    await Promise.all(buses.map(b => b.close({ timeoutMs: 1000 })));
    // The app's Cluster is the app's: still open after the transports closed.
    expect(await appCluster.ping()).toBe('PONG');
    appCluster.disconnect();
  });

  it('RedisStreamsServer and RedisStreamsClient: events and request/reply over tagged streams', async () => {
    const got: string[] = [];

    @Controller()
    class Orders {
      @EventPattern('created')
      created(data: string): void {
        got.push(data);
      }

      @MessagePattern('echo')
      echo(data: string): string {
        return `echo:${data}`;
      }
    }

    @Module({ controllers: [Orders] })
    class OrdersModule {}

    const prefix = `svc:{${tags[1]}}:`;
    const server = new RedisStreamsServer({
      cluster: cluster.startupNodes,
      streamPrefix: prefix,
      blockMs: 100,
      logger: silentLogger,
      closeTimeoutMs: 200,
    });
    const app = await NestFactory.createMicroservice(OrdersModule, {
      strategy: server,
      logger: false,
    });
    await app.listen();
    const client = new RedisStreamsClient({
      cluster: cluster.startupNodes,
      streamPrefix: prefix,
      blockMs: 100,
    });
    closers.push(async () => {
      await client.close();
      await app.close();
    });
    await client.connect();
    await firstValueFrom(client.emit('created', 'o-1'));
    expect(await firstValueFrom(client.send('echo', 'hi'))).toBe('echo:hi');
    await waitFor(() => got.includes('o-1'));
  });

  it("follows ASK and MOVED while the stream's slot migrates to another master", async () => {
    const stream = `mig:{${tags[2]}}`;
    const pub = new StreamPublisher<string>({
      cluster: cluster.startupNodes,
      stream,
      logger: silentLogger,
      encode: v => ['v', v],
      drainInitialIntervalMs: 10,
    });
    const sub = new StreamSubscriber({
      cluster: cluster.startupNodes,
      stream,
      name: 'mig',
      logger: silentLogger,
      blockMs: 100,
      readBackoffInitialMs: 10,
      group: { name: 'g' },
    });
    closers.push(
      () => pub.close(),
      () => sub.close({ timeoutMs: 500 }),
      () => admin.del(stream),
    );
    const seen = new Set<string>();
    await sub.subscribe(m => void seen.add(m.fields.v));
    let n = 0;
    const publish100 = (): Promise<readonly (string | Error)[]> =>
      pub.publishAll(Array.from({ length: 100 }, () => String(n++)));
    expect((await publish100()).every(id => typeof id === 'string')).toBe(true);
    // Move the slot by hand (what redis-cli --cluster reshard does).
    const slot = await cluster.slotOf(stream);
    const { master: from } = await cluster.ownerOf(slot);
    const topology = await cluster.topology();
    const fromId = topology.find(t => t.port === from.port)!.id;
    const to = topology.find(t => t.role === 'master' && t.port !== from.port)!;
    const nodeOf = (port: number) => admin.nodes().find(node => node.options.port === port)!;
    await nodeOf(to.port).call('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', fromId);
    await nodeOf(from.port).call('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', to.id);
    await nodeOf(from.port).call(
      'MIGRATE',
      '127.0.0.1',
      String(to.port),
      '',
      '0',
      '5000',
      'KEYS',
      stream,
    );
    // Migrating: the old owner answers ASK for the stream, which now lives on the new one.
    expect((await publish100()).every(id => typeof id === 'string')).toBe(true);
    await waitFor(() => seen.size === 200, { timeoutMs: 20_000 });
    for (const node of [to.port, from.port])
      await nodeOf(node).call('CLUSTER', 'SETSLOT', String(slot), 'NODE', to.id);
    // Moved: the old owner answers MOVED; clients refresh their slot map.
    expect((await publish100()).every(id => typeof id === 'string')).toBe(true);
    await waitFor(() => seen.size === 300, { timeoutMs: 20_000 });
    expect(pub.stats()).toMatchObject({ written: 300, clusterRefused: 0 });
  });
});

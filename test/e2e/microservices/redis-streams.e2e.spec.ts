import type { INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { ReadPacket } from '@nestjs/microservices';
import { InvalidMessageException } from '@nestjs/microservices/errors/invalid-message.exception.js';
import { Redis } from 'ioredis';
import { firstValueFrom, lastValueFrom, toArray } from 'rxjs';
import {
  ConnectTimeoutError,
  HeraldRecord,
  InvalidPatternError,
  REDIS_STREAMS_TRANSPORT,
  RedisStreamsClient,
  RedisStreamsServer,
  RequestTimeoutError,
  type HeraldMicroserviceStatus,
  type RedisStreamsContext,
  type RedisStreamsServerOptions,
} from '../../../lib/redis/microservice/index.js';
import { silentLogger } from '../../../lib/index.js';
import { TransportClosedError } from '../../../lib/common/errors.js';
import { REDIS_URL, hostPort, uniqueName } from '../../helpers/services.js';
import { TcpProxy } from '../../helpers/tcp-proxy.js';
import { deleteRedisKeys } from '../../helpers/redis-cleanup.js';
import { waitFor } from '../../helpers/wait-for.js';
import { Recorder, handlersModule, type TestPatterns } from './fixtures/handlers.js';
import { Controller, Module } from '@nestjs/common';
import { EventPattern } from '@nestjs/microservices';

const patterns: TestPatterns = {
  event: 'orders.created',
  gated: 'orders.gated',
  flaky: 'orders.flaky',
  swallowed: 'orders.swallowed',
  echo: 'echo',
  slow: 'slow',
  intercepted: 'intercepted',
  guarded: 'guarded',
  piped: 'piped',
  filtered: 'filtered',
  big: 'big',
  unserializable: 'unserializable',
};

const recorder = new Recorder();
const redis = new Redis(REDIS_URL);
const opened: { close(): Promise<unknown> | unknown }[] = [];

/** Fast redelivery and claiming, so failure tests finish quickly. */
const groupOptions = {
  nackRetryDelayMs: 20,
  claimIntervalMs: 200,
  minIdleMs: 2000,
  maxDeliveries: 3,
};

async function startServer(
  prefix: string,
  options: RedisStreamsServerOptions = {},
  instance = 'a',
): Promise<{ app: INestMicroservice; server: RedisStreamsServer }> {
  const server = new RedisStreamsServer({
    url: REDIS_URL,
    streamPrefix: prefix,
    blockMs: 200,
    groupOptions,
    logger: silentLogger,
    closeTimeoutMs: 200,
    ...options,
  });
  const app = await NestFactory.createMicroservice(handlersModule(patterns, recorder, instance), {
    strategy: server,
    logger: false,
  });
  opened.push(app);
  await app.listen();
  return { app, server };
}

function client(
  prefix: string,
  options: Partial<ConstructorParameters<typeof RedisStreamsClient>[0]> = {},
): RedisStreamsClient {
  const made = new RedisStreamsClient({
    url: REDIS_URL,
    streamPrefix: prefix,
    blockMs: 200,
    logger: silentLogger,
    ...options,
  });
  opened.push(made);
  return made;
}

async function pendingCount(stream: string, group = 'nest-microservice'): Promise<number> {
  const summary = (await redis.xpending(stream, group)) as [number, ...unknown[]];
  return Number(summary[0]);
}

beforeEach(() => recorder.reset());

afterEach(async () => {
  for (const item of opened.splice(0).reverse()) await item.close();
});

afterAll(async () => {
  redis.disconnect();
  await deleteRedisKeys(`ms_${process.pid}_*`);
});

describe('RedisStreamsServer / RedisStreamsClient', () => {
  it('delivers emit to @EventPattern with the packet metadata and the stream context', async () => {
    const prefix = `${uniqueName('ms')}:`;
    await startServer(prefix);
    const producer = client(prefix);
    producer.setOnDispatchHook((packet: ReadPacket) => {
      packet.metadata = { traceparent: '00-abc-def-01' };
    });
    await lastValueFrom(producer.emit(patterns.event, { id: 7 }), { defaultValue: undefined });
    await producer
      .emit(patterns.event, new HeraldRecord({ id: 8 }, { metadata: { tenant: 't1' } }))
      .toPromise();
    const [first, second] = await waitFor(() => {
      const seen = recorder.of(patterns.event);
      return seen.length === 2 ? seen : undefined;
    });
    expect(first.data).toEqual({ id: 7 });
    const context = first.context as RedisStreamsContext;
    expect(context.getMetadata()).toEqual({ traceparent: '00-abc-def-01' });
    expect(context.getStream()).toBe(`${prefix}${patterns.event}`);
    expect(context.getMessageId()).toMatch(/^\d+-\d+$/);
    expect(context.getDeliveryCount()).toBe(1);
    expect(context.getGroup()).toBe('nest-microservice');
    expect(second.data).toEqual({ id: 8 });
    expect((second.context as RedisStreamsContext).getMetadata()).toEqual({
      traceparent: '00-abc-def-01',
      tenant: 't1',
    });
  });

  it('answers send through @MessagePattern, for string and object patterns', async () => {
    const prefix = `${uniqueName('ms')}:`;
    await startServer(prefix);
    const caller = client(prefix);
    await expect(firstValueFrom(caller.send(patterns.echo, { hello: 'world' }))).resolves.toEqual({
      echo: { hello: 'world' },
      instance: 'a',
    });
    // Key order does not matter: Nest sorts object patterns into one route.
    await expect(
      firstValueFrom(caller.send({ of: patterns.echo, cmd: 'sum' }, [1, 2, 3])),
    ).resolves.toBe(6);
  });

  it('rejects emit(null) and send(null) with InvalidMessageException, as Nest does', async () => {
    const caller = client(`${uniqueName('ms')}:`);
    await expect(lastValueFrom(caller.emit(patterns.event, null))).rejects.toBeInstanceOf(
      InvalidMessageException,
    );
    await expect(lastValueFrom(caller.send(patterns.echo, undefined))).rejects.toBeInstanceOf(
      InvalidMessageException,
    );
  });

  it('emit is hot (sent without a subscriber) and rejects with TransportClosedError after close', async () => {
    const prefix = `${uniqueName('ms')}:`;
    await startServer(prefix);
    const producer = client(prefix);
    producer.emit(patterns.event, 'nobody subscribed');
    await waitFor(() => recorder.of(patterns.event).length === 1);
    await producer.close();
    await expect(lastValueFrom(producer.emit(patterns.event, 1))).rejects.toBeInstanceOf(
      TransportClosedError,
    );
  });

  it('times out a request nobody answers, per client and per request', async () => {
    const prefix = `${uniqueName('ms')}:`;
    const caller = client(prefix, { requestTimeoutMs: 150 });
    await expect(firstValueFrom(caller.send('nobody.home', 1))).rejects.toBeInstanceOf(
      RequestTimeoutError,
    );
    const patient = client(prefix, { requestTimeoutMs: 0 });
    const error = await firstValueFrom(
      patient.send('nobody.home', new HeraldRecord(1, { timeoutMs: 100 })),
    ).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RequestTimeoutError);
    expect((error as RequestTimeoutError).timeoutMs).toBe(100);
  });

  it('acknowledges an event only after its handler settled', async () => {
    const prefix = `${uniqueName('ms')}:`;
    await startServer(prefix);
    let open!: () => void;
    recorder.gate = new Promise<void>(resolve => (open = resolve));
    await lastValueFrom(client(prefix).emit(patterns.gated, 1), { defaultValue: undefined });
    await waitFor(() => recorder.gateEntered);
    const stream = `${prefix}${patterns.gated}`;
    expect(await pendingCount(stream)).toBe(1);
    open();
    await waitFor(async () => (await pendingCount(stream)) === 0);
    expect(recorder.of(patterns.gated)).toHaveLength(1);
  });

  it('does not acknowledge a failed event: it is delivered again, then dead-lettered', async () => {
    const prefix = `${uniqueName('ms')}:`;
    await startServer(prefix);
    const producer = client(prefix);
    recorder.failUntil = 1;
    await lastValueFrom(producer.emit(patterns.flaky, 'retry me'), { defaultValue: undefined });
    await waitFor(() => recorder.of(patterns.flaky).length === 2);
    const stream = `${prefix}${patterns.flaky}`;
    await waitFor(async () => (await pendingCount(stream)) === 0);
    expect(
      recorder
        .of(patterns.flaky)
        .map(seen => (seen.context as RedisStreamsContext).getDeliveryCount()),
    ).toEqual([1, 2]);

    recorder.reset();
    recorder.failUntil = Infinity;
    await lastValueFrom(producer.emit(patterns.flaky, 'give up'), { defaultValue: undefined });
    const dead = await waitFor(async () => {
      const entries = await redis.xrange(`${stream}:dead`, '-', '+');
      return entries.length === 1 && entries;
    });
    expect(JSON.stringify(dead)).toContain('give up');
    await waitFor(async () => (await pendingCount(stream)) === 0);
    expect(recorder.flakyCalls).toBe(groupOptions.maxDeliveries);
  });

  it('claims an event a dead consumer of the group left pending and handles it', async () => {
    const prefix = `${uniqueName('ms')}:`;
    const stream = `${prefix}${patterns.event}`;
    // A consumer that reads the entry and dies before acknowledging it.
    await redis.xgroup('CREATE', stream, 'nest-microservice', '$', 'MKSTREAM');
    await redis.xadd(
      stream,
      '*',
      'packet',
      JSON.stringify({ pattern: patterns.event, data: 'orphan' }),
    );
    const taken = (await redis.xreadgroup(
      'GROUP',
      'nest-microservice',
      'ghost',
      'COUNT',
      1,
      'STREAMS',
      stream,
      '>',
    )) as [string, [string, string[]][]][] | null;
    expect(taken?.[0][1]).toHaveLength(1);
    await startServer(prefix, {
      groupOptions: { ...groupOptions, minIdleMs: 300, claimIntervalMs: 100 },
    });
    const [seen] = await waitFor(() => {
      const list = recorder.of(patterns.event);
      return list.length === 1 ? list : undefined;
    });
    expect(seen.data).toBe('orphan');
    expect((seen.context as RedisStreamsContext).getDeliveryCount()).toBe(2);
    await waitFor(async () => (await pendingCount(stream)) === 0);
  });

  it('acknowledges an event whose exception filter swallowed the error', async () => {
    const prefix = `${uniqueName('ms')}:`;
    await startServer(prefix);
    await lastValueFrom(client(prefix).emit(patterns.swallowed, 1), { defaultValue: undefined });
    const stream = `${prefix}${patterns.swallowed}`;
    await waitFor(() => recorder.swallowedCalls === 1);
    await waitFor(async () => (await pendingCount(stream)) === 0);
    const info = (await redis.xinfo('GROUPS', stream)) as unknown[][];
    const fields = info[0] as unknown[];
    expect(fields[fields.indexOf('entries-read') + 1]).toBe(1);
    expect(recorder.swallowedCalls).toBe(1);
  });

  it('applies interceptors, guards, pipes and exception filters to pattern handlers', async () => {
    const prefix = `${uniqueName('ms')}:`;
    await startServer(prefix);
    const caller = client(prefix);
    await expect(firstValueFrom(caller.send(patterns.intercepted, 'v'))).resolves.toEqual({
      intercepted: 'v',
    });
    await expect(firstValueFrom(caller.send(patterns.guarded, { allow: true }))).resolves.toBe(
      'let in',
    );
    await expect(firstValueFrom(caller.send(patterns.guarded, { allow: false }))).rejects.toEqual({
      status: 'error',
      message: 'Forbidden resource',
    });
    await expect(firstValueFrom(caller.send(patterns.piped, 20))).resolves.toBe(41);
    await expect(firstValueFrom(caller.send(patterns.piped, 'twenty'))).rejects.toEqual({
      status: 'error',
      message: 'a number is required',
    });
    await expect(firstValueFrom(caller.send(patterns.filtered, 1))).rejects.toEqual({
      status: 'error',
      message: 'filtered: bad input',
    });
  });

  it('fails listen() with InvalidPatternError for a pattern no client can address', async () => {
    @Controller()
    class BadController {
      @EventPattern({ when: new Date(0) })
      handle(): void {}
    }
    @Module({ controllers: [BadController] })
    class BadModule {}
    const app = await NestFactory.createMicroservice(BadModule, {
      strategy: new RedisStreamsServer({ url: REDIS_URL, logger: silentLogger }),
      logger: false,
    });
    opened.push(app);
    await expect(app.listen()).rejects.toBeInstanceOf(InvalidPatternError);
    const caller = client(`${uniqueName('ms')}:`);
    await expect(lastValueFrom(caller.emit({ cmd: [1, 2] }, 1))).rejects.toBeInstanceOf(
      InvalidPatternError,
    );
  });

  it('splits events between two instances of the group and answers each request once', async () => {
    const prefix = `${uniqueName('ms')}:`;
    await startServer(prefix, {}, 'a');
    await startServer(prefix, {}, 'b');
    const producer = client(prefix);
    let sent = 0;
    await waitFor(async () => {
      await lastValueFrom(producer.emit(patterns.event, sent++), { defaultValue: undefined });
      const instances = new Set(recorder.of(patterns.event).map(seen => seen.instance));
      return instances.size === 2;
    });
    await waitFor(() => recorder.of(patterns.event).length === sent);
    const ids = recorder
      .of(patterns.event)
      .map(seen => (seen.context as RedisStreamsContext).getMessageId());
    expect(new Set(ids).size).toBe(sent);

    const replies = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        lastValueFrom(producer.send(patterns.echo, i).pipe(toArray())),
      ),
    );
    expect(replies.map(reply => reply.length)).toEqual(Array(10).fill(1));
    expect(recorder.of(patterns.echo)).toHaveLength(10);
  });

  it('keeps a TTL on its reply stream, errors requests in flight and deletes the stream on close', async () => {
    const prefix = `${uniqueName('ms')}:`;
    await startServer(prefix);
    const caller = client(prefix, { requestTimeoutMs: 0, replyTtlMs: 1500 });
    await firstValueFrom(caller.send(patterns.echo, 1));
    expect(await redis.exists(caller.replyStream)).toBe(1);
    // Refreshed while the client lives, so a crashed client's stream expires.
    const ttl = await waitFor(async () => {
      const left = await redis.pttl(caller.replyStream);
      return left > 0 ? left : undefined;
    });
    expect(ttl).toBeLessThanOrEqual(1500);
    const waiting = firstValueFrom(caller.send(patterns.slow, 1)).catch((error: unknown) => error);
    await waitFor(() => recorder.of(patterns.slow).length === 1);
    await caller.close();
    expect(await waiting).toBeInstanceOf(TransportClosedError);
    expect(await redis.exists(caller.replyStream)).toBe(0);
    await expect(caller.connect()).rejects.toBeInstanceOf(TransportClosedError);
  });

  it('reports status through a connection cut and delivers again after it', async () => {
    const proxy = new TcpProxy(hostPort(REDIS_URL).host, hostPort(REDIS_URL).port);
    await proxy.start();
    opened.push({ close: () => proxy.close() });
    const prefix = `${uniqueName('ms')}:`;
    const { server } = await startServer(prefix, { url: proxy.url(REDIS_URL) });
    const statuses: HeraldMicroserviceStatus[] = [];
    server.status.subscribe(status => statuses.push(status));
    let reconnects = 0;
    server.on('reconnect', () => void reconnects++);
    expect(statuses).toEqual(['connected']);
    proxy.cut();
    await waitFor(() => statuses.includes('reconnecting'));
    proxy.restore();
    await waitFor(() => statuses[statuses.length - 1] === 'connected' && reconnects > 0);
    await lastValueFrom(client(prefix).emit(patterns.event, 'after'), { defaultValue: undefined });
    await waitFor(() => recorder.of(patterns.event).length === 1);
  });

  it('fail-fast listen() rejects when Redis is unreachable; degraded listen() starts and connects later', async () => {
    const proxy = new TcpProxy(hostPort(REDIS_URL).host, hostPort(REDIS_URL).port);
    await proxy.start();
    opened.push({ close: () => proxy.close() });
    proxy.cut();
    const prefix = `${uniqueName('ms')}:`;
    await expect(
      startServer(prefix, { url: proxy.url(REDIS_URL), connectTimeoutMs: 300 }),
    ).rejects.toBeInstanceOf(ConnectTimeoutError);

    const { server } = await startServer(prefix, {
      url: proxy.url(REDIS_URL),
      startup: 'degraded',
    });
    const statuses: HeraldMicroserviceStatus[] = [];
    server.status.subscribe(status => statuses.push(status));
    expect(statuses).toEqual(['connecting']);
    proxy.restore();
    await waitFor(() => statuses.includes('connected'));
    await lastValueFrom(client(prefix).emit(patterns.event, 'late'), { defaultValue: undefined });
    await waitFor(() => recorder.of(patterns.event).length === 1);
  });

  it('runs Nest processing hooks around events and requests, with the transport id and context', async () => {
    const prefix = `${uniqueName('ms')}:`;
    const server = new RedisStreamsServer({
      url: REDIS_URL,
      streamPrefix: prefix,
      blockMs: 200,
      logger: silentLogger,
      closeTimeoutMs: 200,
    });
    const trail: string[] = [];
    server.setOnProcessingStartHook((transportId, context, done) => {
      trail.push(
        `start:${String(transportId === REDIS_STREAMS_TRANSPORT)}:${(context as RedisStreamsContext).getStream()}`,
      );
      return done();
    });
    server.setOnProcessingEndHook((_transportId, context) => {
      trail.push(`end:${(context as RedisStreamsContext).getStream()}`);
    });
    const app = await NestFactory.createMicroservice(handlersModule(patterns, recorder), {
      strategy: server,
      logger: false,
    });
    opened.push(app);
    await app.listen();
    const caller = client(prefix);
    await lastValueFrom(caller.emit(patterns.event, 1), { defaultValue: undefined });
    await waitFor(() => trail.includes(`end:${prefix}${patterns.event}`));
    await firstValueFrom(caller.send(patterns.echo, 2));
    await waitFor(() => trail.includes(`end:${prefix}${patterns.echo}`));
    expect(trail).toEqual([
      `start:true:${prefix}${patterns.event}`,
      `end:${prefix}${patterns.event}`,
      `start:true:${prefix}${patterns.echo}`,
      `end:${prefix}${patterns.echo}`,
    ]);
  });

  it('uses the serializer and deserializer options on both sides', async () => {
    const prefix = `${uniqueName('ms')}:`;
    await startServer(prefix, {
      deserializer: {
        deserialize: (value: { pattern: string; data: { wrapped: unknown }; id?: string }) => ({
          ...value,
          data: value.data.wrapped,
        }),
      },
      serializer: {
        serialize: (reply: { response?: unknown }) => ({
          ...reply,
          response: { outer: reply.response },
        }),
      },
    });
    const caller = client(prefix, {
      serializer: {
        serialize: (packet: ReadPacket) => ({ ...packet, data: { wrapped: packet.data } }),
      },
      deserializer: {
        deserialize: (value: {
          id: string;
          response?: { outer: unknown };
          isDisposed?: boolean;
        }) => ({
          ...value,
          response: value.response?.outer,
        }),
      },
    });
    await expect(firstValueFrom(caller.send(patterns.echo, 'x'))).resolves.toEqual({
      echo: 'x',
      instance: 'a',
    });
  });

  it('counts requests without a reply stream in stats().unanswerable and warns once per stream per interval', async () => {
    const prefix = `${uniqueName('ms')}:`;
    const warnings: string[] = [];
    const logger = {
      log: () => undefined,
      error: () => undefined,
      warn: (line: string) => void warnings.push(line),
    };
    const { server } = await startServer(prefix, { logger });
    for (let i = 0; i < 3; i++) {
      await redis.xadd(
        `${prefix}${patterns.echo}`,
        '*',
        'packet',
        JSON.stringify({ pattern: patterns.echo, data: i, id: `no-address-${i}` }),
      );
    }
    await waitFor(() => server.stats().unanswerable === 3);
    expect(server.stats()).toMatchObject({ requests: 0, unanswerable: 3 });
    expect(warnings.filter(line => line.includes('has no reply stream in its id'))).toHaveLength(1);
  });

  it('replies a SerializationError for a reply JSON cannot carry, drops requests without a reply stream, dead-letters undecodable entries', async () => {
    const prefix = `${uniqueName('ms')}:`;
    const warnings: string[] = [];
    const logger = {
      log: () => undefined,
      error: () => undefined,
      warn: (line: string) => void warnings.push(line),
    };
    await startServer(prefix, { logger });
    const caller = client(prefix);
    await expect(firstValueFrom(caller.send(patterns.unserializable, 1))).rejects.toMatchObject({
      status: 'error',
      name: 'SerializationError',
    });

    const echoStream = `${prefix}${patterns.echo}`;
    await redis.xadd(
      echoStream,
      '*',
      'packet',
      JSON.stringify({ pattern: patterns.echo, data: 1, id: 'no-address' }),
    );
    await waitFor(() => warnings.some(line => line.includes('has no reply stream in its id')));
    await waitFor(async () => (await pendingCount(echoStream)) === 0);
    expect(recorder.of(patterns.echo)).toHaveLength(0);

    const eventStream = `${prefix}${patterns.event}`;
    await redis.xadd(eventStream, '*', 'packet', 'not json');
    await waitFor(async () => (await redis.xlen(`${eventStream}:dead`)) === 1);
    expect(recorder.of(patterns.event)).toHaveLength(0);
  });

  it('binds handlers by transport id: the Symbol is REDIS_STREAMS_TRANSPORT', () => {
    expect(new RedisStreamsServer({ logger: silentLogger }).transportId).toBe(
      REDIS_STREAMS_TRANSPORT,
    );
  });
});

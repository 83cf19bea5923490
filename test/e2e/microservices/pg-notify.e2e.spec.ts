import { Controller, Module, type INestMicroservice, type LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPattern, type ReadPacket } from '@nestjs/microservices';
import { InvalidMessageException } from '@nestjs/microservices/errors/invalid-message.exception.js';
import pg from 'pg';
import { firstValueFrom, lastValueFrom } from 'rxjs';
import { TransportClosedError } from '../../../lib/common/errors.js';
import { silentLogger } from '../../../lib/index.js';
import {
  ConnectTimeoutError,
  HeraldRecord,
  InvalidPatternError,
  PG_NOTIFY_TRANSPORT,
  PgNotifyClient,
  PgNotifyServer,
  ReplyTooLargeError,
  RequestTimeoutError,
  pgChannelOf,
  type HeraldMicroserviceStatus,
  type PgNotifyClientOptions,
  type PgNotifyContext,
  type PgNotifyServerOptions,
} from '../../../lib/pg/microservice/index.js';
import { PgHub } from '../../../lib/pg/index.js';
import { PG_URL, hostPort, uniqueName } from '../../helpers/services.js';
import { TcpProxy } from '../../helpers/tcp-proxy.js';
import { waitFor } from '../../helpers/wait-for.js';
import {
  Recorder,
  handlersModule,
  prefixedPatterns,
  type TestPatterns,
} from './fixtures/handlers.js';

const base = uniqueName('ms');
const patterns: TestPatterns = prefixedPatterns(base);

const recorder = new Recorder();
const pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
const opened: { close(): Promise<unknown> | unknown }[] = [];

/** Nest's log lines (the RpcExceptionsHandler logs event handler failures here). */
class NestLines implements LoggerService {
  readonly errors: unknown[][] = [];
  log(): void {}
  warn(): void {}
  error(...args: unknown[]): void {
    this.errors.push(args);
  }
}

async function startServer(
  options: PgNotifyServerOptions = {},
  instance = 'a',
  logger: LoggerService | false = false,
): Promise<{ app: INestMicroservice; server: PgNotifyServer }> {
  const server = new PgNotifyServer({
    connectionString: PG_URL,
    reconnectMs: 100,
    logger: silentLogger,
    closeTimeoutMs: 200,
    ...options,
  });
  const app = await NestFactory.createMicroservice(handlersModule(patterns, recorder, instance), {
    strategy: server,
    logger,
  });
  opened.push(app);
  await app.listen();
  return { app, server };
}

function client(options: PgNotifyClientOptions = {}): PgNotifyClient {
  const made = new PgNotifyClient({
    connectionString: PG_URL,
    reconnectMs: 100,
    logger: silentLogger,
    ...options,
  });
  opened.push(made);
  return made;
}

beforeEach(() => recorder.reset());

afterEach(async () => {
  for (const item of opened.splice(0).reverse()) await item.close();
});

afterAll(async () => {
  await pool.end();
});

describe('PgNotifyServer / PgNotifyClient', () => {
  it('delivers emit to @EventPattern with the packet metadata and the notification context', async () => {
    await startServer();
    const producer = client();
    producer.setOnDispatchHook((packet: ReadPacket) => {
      packet.metadata = { traceparent: '00-abc-def-01' };
    });
    await lastValueFrom(producer.emit(patterns.event, { id: 7 }), { defaultValue: undefined });
    const [seen] = await waitFor(() => {
      const list = recorder.of(patterns.event);
      return list.length === 1 ? list : undefined;
    });
    expect(seen.data).toEqual({ id: 7 });
    const context = seen.context as PgNotifyContext;
    expect(context.getChannel()).toBe(patterns.event);
    expect(context.getMetadata()).toEqual({ traceparent: '00-abc-def-01' });
    expect(context.getKey()).toEqual([]);
    expect(context.getProcessId()).toEqual(expect.any(Number));
  });

  it('hands a trigger-style pg-hub notification to @EventPattern as its value, with key and sender pid', async () => {
    await startServer();
    const sender = await pool.connect();
    try {
      const { rows } = await sender.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      await sender.query('SELECT pg_notify($1, $2)', [
        patterns.event,
        'e42,-7:{"op":"insert","row":1}',
      ]);
      const [seen] = await waitFor(() => {
        const list = recorder.of(patterns.event);
        return list.length === 1 ? list : undefined;
      });
      expect(seen.data).toEqual({ op: 'insert', row: 1 });
      const context = seen.context as PgNotifyContext;
      expect(context.getKey()).toEqual([42n, -7n]);
      expect(context.getProcessId()).toBe(rows[0].pid);
      expect(context.getMetadata()).toBeUndefined();
    } finally {
      sender.release();
    }
  });

  it('answers send through @MessagePattern, for string and object patterns', async () => {
    await startServer();
    const caller = client();
    await expect(firstValueFrom(caller.send(patterns.echo, { hello: 'world' }))).resolves.toEqual({
      echo: { hello: 'world' },
      instance: 'a',
    });
    await expect(
      firstValueFrom(caller.send({ of: patterns.echo, cmd: 'sum' }, [1, 2, 3])),
    ).resolves.toBe(6);
    expect(pgChannelOf('{"cmd":"sum"}', { cmd: 'sum' })).toMatch(/^nest_[0-9a-f]{40}$/);
  });

  it('rejects emit(null) with InvalidMessageException and a bad channel name with InvalidPatternError', async () => {
    const caller = client();
    await expect(lastValueFrom(caller.emit(patterns.event, null))).rejects.toBeInstanceOf(
      InvalidMessageException,
    );
    await expect(lastValueFrom(caller.emit('Orders.Created', 1))).rejects.toBeInstanceOf(
      InvalidPatternError,
    );
  });

  it('times out a request nobody answers, per client and per request', async () => {
    const caller = client({ requestTimeoutMs: 150 });
    await expect(firstValueFrom(caller.send(`${base}_nobody`, 1))).rejects.toBeInstanceOf(
      RequestTimeoutError,
    );
    const error = await firstValueFrom(
      caller.send(`${base}_nobody`, new HeraldRecord(1, { timeoutMs: 80 })),
    ).catch((caught: unknown) => caught);
    expect((error as RequestTimeoutError).timeoutMs).toBe(80);
  });

  it('rejects the caller with ReplyTooLargeError when the reply does not fit NOTIFY', async () => {
    const { server } = await startServer();
    const caller = client({ requestTimeoutMs: 20_000 });
    await expect(firstValueFrom(caller.send(patterns.big, 100))).resolves.toBe('x'.repeat(100));
    const error = await firstValueFrom(caller.send(patterns.big, 9000)).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(ReplyTooLargeError);
    expect((error as ReplyTooLargeError).limit).toBe(7999);
    expect(server.stats().replyErrors).toBe(1);
  });

  it('logs an event handler failure through Nest and keeps handling', async () => {
    const lines = new NestLines();
    await startServer({}, 'a', lines);
    recorder.failUntil = 1;
    const producer = client();
    await lastValueFrom(producer.emit(patterns.flaky, 'boom'), { defaultValue: undefined });
    await waitFor(() => lines.errors.some(args => String(args[0]).includes('flaky failure 1')));
    await lastValueFrom(producer.emit(patterns.event, 'next'), { defaultValue: undefined });
    await waitFor(() => recorder.of(patterns.event).length === 1);
    expect(recorder.flakyCalls).toBe(1); // at most once: NOTIFY is never redelivered
  });

  it('applies interceptors, guards, pipes and exception filters to pattern handlers', async () => {
    await startServer();
    const caller = client();
    await expect(firstValueFrom(caller.send(patterns.intercepted, 'v'))).resolves.toEqual({
      intercepted: 'v',
    });
    await expect(firstValueFrom(caller.send(patterns.guarded, { allow: false }))).rejects.toEqual({
      status: 'error',
      message: 'Forbidden resource',
    });
    await expect(firstValueFrom(caller.send(patterns.piped, 20))).resolves.toBe(41);
    await expect(firstValueFrom(caller.send(patterns.filtered, 1))).rejects.toEqual({
      status: 'error',
      message: 'filtered: bad input',
    });
  });

  it('fails listen() with InvalidPatternError for a channel name PostgreSQL would fold', async () => {
    @Controller()
    class BadController {
      @EventPattern('Orders.Created')
      handle(_data: unknown): void {}
    }
    @Module({ controllers: [BadController] })
    class BadModule {}
    const app = await NestFactory.createMicroservice(BadModule, {
      strategy: new PgNotifyServer({ connectionString: PG_URL, logger: silentLogger }),
      logger: false,
    });
    opened.push(app);
    await expect(app.listen()).rejects.toBeInstanceOf(InvalidPatternError);
  });

  it('with two instances: both receive an event, one answers each request', async () => {
    const a = await startServer({}, 'a');
    const b = await startServer({}, 'b');
    const caller = client();
    await lastValueFrom(caller.emit(patterns.event, 'to all'), { defaultValue: undefined });
    await waitFor(() => recorder.of(patterns.event).length === 2);
    expect(new Set(recorder.of(patterns.event).map(seen => seen.instance))).toEqual(
      new Set(['a', 'b']),
    );

    const replies = await Promise.all(
      Array.from({ length: 10 }, (_, i) => firstValueFrom(caller.send(patterns.echo, i))),
    );
    expect(replies.map(reply => (reply as { echo: number }).echo)).toEqual([...Array(10).keys()]);
    // Wait until both instances settled every claim, then count the handlers that ran.
    await waitFor(() => {
      const total = (s: PgNotifyServer): number => s.stats().claimsWon + s.stats().claimsLost;
      return total(a.server) === 10 && total(b.server) === 10;
    });
    expect(a.server.stats().claimsWon + b.server.stats().claimsWon).toBe(10);
    expect(recorder.of(patterns.echo)).toHaveLength(10);
  });

  it('errors requests in flight and UNLISTENs its reply channel on close (shared hub)', async () => {
    await startServer();
    const hub = new PgHub({ connectionString: PG_URL, logger: silentLogger });
    opened.push({ close: () => hub.stop() });
    const caller = client({ hub, requestTimeoutMs: 0 });
    await firstValueFrom(caller.send(patterns.echo, 1));
    expect(await hub.listeningChannels()).toContain(caller.replyChannel);
    const waiting = firstValueFrom(caller.send(patterns.slow, 1)).catch((error: unknown) => error);
    await waitFor(() => recorder.of(patterns.slow).length === 1);
    await caller.close();
    expect(await waiting).toBeInstanceOf(TransportClosedError);
    await waitFor(async () => !(await hub.listeningChannels()).includes(caller.replyChannel));
    expect(hub.state).toBe('connected');
  });

  it('reports status through a terminated backend and a TCP cut, announces reconnect, delivers after', async () => {
    const applicationName = uniqueName('ms_app');
    const proxy = new TcpProxy(hostPort(PG_URL).host, hostPort(PG_URL).port);
    await proxy.start();
    opened.push({ close: () => proxy.close() });
    const { server } = await startServer({ connectionString: proxy.url(PG_URL), applicationName });
    const statuses: HeraldMicroserviceStatus[] = [];
    server.status.subscribe(status => statuses.push(status));
    let reconnects = 0;
    server.on('reconnect', () => void reconnects++);
    expect(statuses).toEqual(['connected']);

    await pool.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
      [`${applicationName}/listen`],
    );
    await waitFor(() => reconnects === 1);
    expect(statuses).toEqual(['connected', 'reconnecting', 'connected']);

    proxy.cut();
    await waitFor(() => statuses.length === 4);
    expect(statuses[3]).toBe('reconnecting');
    proxy.restore();
    await waitFor(() => reconnects === 2 && statuses[statuses.length - 1] === 'connected');
    await lastValueFrom(client().emit(patterns.event, 'after'), { defaultValue: undefined });
    await waitFor(() => recorder.of(patterns.event).length === 1);
  });

  it('fail-fast listen() rejects when PostgreSQL is unreachable; degraded listen() starts and connects later', async () => {
    const proxy = new TcpProxy(hostPort(PG_URL).host, hostPort(PG_URL).port);
    await proxy.start();
    opened.push({ close: () => proxy.close() });
    proxy.cut();
    await expect(
      startServer({ connectionString: proxy.url(PG_URL), connectTimeoutMs: 300 }),
    ).rejects.toBeInstanceOf(ConnectTimeoutError);
    const { server } = await startServer({
      connectionString: proxy.url(PG_URL),
      startup: 'degraded',
    });
    const statuses: HeraldMicroserviceStatus[] = [];
    server.status.subscribe(status => statuses.push(status));
    expect(statuses).toEqual(['connecting']);
    proxy.restore();
    await waitFor(() => statuses.includes('connected'));
    await lastValueFrom(client().emit(patterns.event, 'late'), { defaultValue: undefined });
    await waitFor(() => recorder.of(patterns.event).length === 1);
  });

  it('replies a SerializationError for a reply JSON cannot carry and drops requests without a reply channel', async () => {
    const warnings: string[] = [];
    const logger = {
      log: () => undefined,
      error: () => undefined,
      warn: (line: string) => void warnings.push(line),
    };
    const { server } = await startServer({ logger });
    const caller = client();
    await expect(firstValueFrom(caller.send(patterns.unserializable, 1))).rejects.toMatchObject({
      status: 'error',
      name: 'SerializationError',
    });
    await pool.query('SELECT pg_notify($1, $2)', [
      patterns.echo,
      `e:${JSON.stringify({ pattern: patterns.echo, data: 1, id: 'no-address' })}`,
    ]);
    await waitFor(() => warnings.some(line => line.includes('without a reply channel')));
    expect(recorder.of(patterns.echo)).toHaveLength(0);
    expect(server.stats().replyErrors).toBe(1);
  });

  it('counts every request without a reply channel and warns once per channel per interval', async () => {
    const warnings: string[] = [];
    const logger = {
      log: () => undefined,
      error: () => undefined,
      warn: (line: string) => void warnings.push(line),
    };
    const { server } = await startServer({ logger });
    for (let i = 0; i < 5; i++) {
      await pool.query('SELECT pg_notify($1, $2)', [
        patterns.echo,
        `e:${JSON.stringify({ pattern: patterns.echo, data: i, id: `no-address-${i}` })}`,
      ]);
    }
    await waitFor(() => server.stats().unanswerable === 5);
    expect(warnings.filter(line => line.includes('without a reply channel'))).toHaveLength(1);
    await server.close();
    // close() writes what was held back, with the count of repeats.
    expect(
      warnings.some(line =>
        /^pg notify-ms-no-reply-channel: .*dropped \(5 so far\) \[channel=\S+ id=no-address-4\] \(and 4 more like it/.test(
          line,
        ),
      ),
    ).toBe(true);
  });

  it('does not answer a request it cannot claim (the caller times out, the error is counted and logged)', async () => {
    const errors: string[] = [];
    const logger = {
      log: () => undefined,
      warn: () => undefined,
      error: (line: string) => void errors.push(line),
    };
    const { server } = await startServer({ claimTable: 'no_such_schema_x.claims', logger });
    const caller = client({ requestTimeoutMs: 300 });
    await expect(firstValueFrom(caller.send(patterns.echo, 1))).rejects.toBeInstanceOf(
      RequestTimeoutError,
    );
    // The claim fails twice (create table, then its retry): it may end after the caller's timeout.
    await waitFor(() => server.stats().claimErrors === 1);
    expect(errors.some(line => line.includes('claiming request'))).toBe(true);
    expect(recorder.of(patterns.echo)).toHaveLength(0);
  });

  it('binds handlers by transport id: the Symbol is PG_NOTIFY_TRANSPORT', () => {
    expect(new PgNotifyServer({ connectionString: PG_URL }).transportId).toBe(PG_NOTIFY_TRANSPORT);
  });
});

import { firstValueFrom, lastValueFrom } from 'rxjs';
import type { StateChange } from '../../../lib/common/state-machine.js';
import {
  ConnectTimeoutError,
  PgNotifyClient,
  PgNotifyServer,
  type HeraldLifecycleState,
} from '../../../lib/pg/microservice/index.js';
import { RedisStreamsClient } from '../../../lib/redis/microservice/index.js';
import { silentLogger } from '../../../lib/index.js';
import { PG_URL, REDIS_URL, hostPort, uniqueName } from '../../helpers/services.js';
import { TcpProxy } from '../../helpers/tcp-proxy.js';
import { deleteRedisKeys } from '../../helpers/redis-cleanup.js';
import { waitFor } from '../../helpers/wait-for.js';

/**
 * Issue 14 point 2 for the microservice clients: a connect that fails and a
 * send that throws settle every emit/send waiting on them with the cause;
 * none is left pending, and the client works again once the fault is gone.
 */
const opened: { close(): Promise<unknown> | unknown }[] = [];
const prefix = `${uniqueName('msfault')}:`;

afterEach(async () => {
  for (const item of opened.splice(0).reverse()) await item.close();
});

afterAll(async () => {
  await deleteRedisKeys(`${prefix}*`);
});

async function proxyTo(url: string): Promise<TcpProxy> {
  const { host, port } = hostPort(url);
  const proxy = new TcpProxy(host, port);
  await proxy.start();
  opened.push({ close: () => proxy.close() });
  return proxy;
}

function lastState(client: {
  status$: { subscribe(fn: (c: StateChange<HeraldLifecycleState>) => void): unknown };
}): () => StateChange<HeraldLifecycleState> | undefined {
  let last: StateChange<HeraldLifecycleState> | undefined;
  client.status$.subscribe(change => (last = change));
  return () => last;
}

/** A serializer that throws on one value: the fault is in the send path, not the server. */
const throwingSerializer = {
  serialize(packet: { data?: unknown }): unknown {
    if (packet.data === 'boom') throw new Error('serializer refused boom');
    return packet;
  },
};

describe('PgNotifyClient faults', () => {
  it('a database it cannot reach: emit and send reject with ConnectTimeoutError naming the cause, then work once it is back', async () => {
    const proxy = await proxyTo(PG_URL);
    proxy.cut();
    const client = new PgNotifyClient({
      connectionString: proxy.url(PG_URL),
      connectTimeoutMs: 1500,
      reconnectMs: 100,
      logger: silentLogger,
    });
    opened.push(client);
    const state = lastState(client);
    const channel = uniqueName('msfault').toLowerCase();
    const emitted = lastValueFrom(client.emit(channel, 1), { defaultValue: undefined });
    const sent = firstValueFrom(client.send(channel, 1));
    const [emitError, sendError] = await Promise.all([
      emitted.then(
        () => undefined,
        (error: unknown) => error,
      ),
      sent.then(
        () => undefined,
        (error: unknown) => error,
      ),
    ]);
    for (const error of [emitError, sendError]) {
      expect(error).toBeInstanceOf(ConnectTimeoutError);
      // The hub's LISTEN connection is its own (not a pool's): its failure is the cause.
      expect((error as ConnectTimeoutError).reason).toMatch(/LISTEN connection attempt failed/);
      expect((error as Error).message).toMatch(
        /last failure: pg listen-connect-failed: LISTEN connection attempt failed.*\[hub=pg-notify-client\]/,
      );
    }
    expect(state()).toMatchObject({
      state: 'connecting',
      reason: expect.stringMatching(/could not connect/),
    });

    proxy.restore();
    await waitFor(() => state()?.state === 'connected', { timeoutMs: 10_000 });
    await expect(lastValueFrom(client.emit(channel, 2))).resolves.toBeUndefined();
  });

  it('a send whose serialization throws rejects with that error; the client keeps working', async () => {
    const client = new PgNotifyClient({
      connectionString: PG_URL,
      serializer: throwingSerializer,
      requestTimeoutMs: 0,
      logger: silentLogger,
    });
    opened.push(client);
    const channel = uniqueName('msfault').toLowerCase();
    await client.connect();
    await expect(firstValueFrom(client.emit(channel, 'boom'))).rejects.toThrow(
      'serializer refused boom',
    );
    await expect(firstValueFrom(client.send(channel, 'boom'))).rejects.toThrow(
      'serializer refused boom',
    );
    await expect(firstValueFrom(client.emit(channel, 'x'.repeat(9000)))).rejects.toMatchObject({
      name: 'PayloadTooLargeError',
    });
    await expect(lastValueFrom(client.emit(channel, 1))).resolves.toBeUndefined();
  });
});

describe('RedisStreamsClient faults', () => {
  it('a Redis it cannot reach: emit and send reject with ConnectTimeoutError naming the cause, then work once it is back', async () => {
    const proxy = await proxyTo(REDIS_URL);
    proxy.cut();
    const client = new RedisStreamsClient({
      url: proxy.url(REDIS_URL),
      streamPrefix: prefix,
      connectTimeoutMs: 1500,
      blockMs: 100,
      logger: silentLogger,
    });
    opened.push(client);
    const state = lastState(client);
    const emitted = lastValueFrom(client.emit('orders', 1), { defaultValue: undefined });
    const sent = firstValueFrom(client.send('orders', 1));
    const errors = await Promise.all(
      [emitted, sent].map(p =>
        p.then(
          () => undefined,
          (error: unknown) => error,
        ),
      ),
    );
    for (const error of errors) {
      expect(error).toBeInstanceOf(ConnectTimeoutError);
      expect((error as ConnectTimeoutError).reason).toMatch(/redis .* connection/);
    }
    expect(state()).toMatchObject({
      state: 'connecting',
      reason: expect.stringMatching(/could not connect/),
    });

    proxy.restore();
    await waitFor(
      async () => {
        try {
          await lastValueFrom(client.emit('orders', 2), { defaultValue: undefined });
          return true;
        } catch {
          return false;
        }
      },
      { timeoutMs: 15_000 },
    );
    // The reply reader may come back after the publisher: connected once both are.
    await waitFor(() => state()?.state === 'connected', { timeoutMs: 15_000 });
  });

  it('a send whose serialization throws rejects with that error; the client keeps working', async () => {
    const client = new RedisStreamsClient({
      url: REDIS_URL,
      streamPrefix: prefix,
      serializer: throwingSerializer,
      blockMs: 100,
      logger: silentLogger,
    });
    opened.push(client);
    await client.connect();
    await expect(firstValueFrom(client.emit('orders', 'boom'))).rejects.toThrow(
      'serializer refused boom',
    );
    await expect(firstValueFrom(client.send('orders', 'boom'))).rejects.toThrow(
      'serializer refused boom',
    );
    await expect(lastValueFrom(client.emit('orders', 1))).resolves.toBeUndefined();
  });
});

describe('PgNotifyServer faults', () => {
  it('a fail-fast listen that cannot connect calls back with ConnectTimeoutError naming the cause; status$ ends disconnected with it', async () => {
    const proxy = await proxyTo(PG_URL);
    proxy.cut();
    const server = new PgNotifyServer({
      connectionString: proxy.url(PG_URL),
      connectTimeoutMs: 1000,
      reconnectMs: 100,
      logger: silentLogger,
    });
    opened.push(server);
    const state = lastState(server);
    const error = await new Promise<unknown>(resolve => server.listen(resolve));
    expect(error).toBeInstanceOf(ConnectTimeoutError);
    expect((error as ConnectTimeoutError).reason).toMatch(
      /^pg listen-connect-failed: LISTEN connection attempt failed.*\[hub=pg-notify-server\]$/,
    );
    await waitFor(() => state()?.state === 'disconnected');
    expect(state()?.reason).toMatch(
      /could not connect within 1000 ms \(last failure: .*LISTEN connection attempt failed/,
    );
  });
});

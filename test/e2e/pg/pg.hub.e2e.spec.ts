import pg from 'pg';
import { PayloadTooLargeError, QueueFullError, TransportClosedError } from '../../../lib/index.js';
import {
  InvalidTopicError,
  PgHub,
  isAdvisory,
  type PgHubAdvisory,
  type PgHubEvent,
  type PgHubOptions,
} from '../../../lib/pg/index.js';
import { PG_URL, hostPort, uniqueName } from '../../helpers/services.js';
import { TcpProxy } from '../../helpers/tcp-proxy.js';
import { waitFor } from '../../helpers/wait-for.js';

/** A topic no other test uses (lower case, < 63 bytes). */
const topic = (prefix: string): string => uniqueName(prefix).toLowerCase().slice(0, 60);

describe('PgHub on a real PostgreSQL', () => {
  let admin: pg.Pool;
  const hubs: PgHub[] = [];
  const proxies: TcpProxy[] = [];

  const makeHub = (options: PgHubOptions = {}): PgHub => {
    const hub = new PgHub({
      connectionString: PG_URL,
      reconnectMs: 50,
      applicationName: uniqueName('hubtest'),
      ...options,
    });
    hubs.push(hub);
    return hub;
  };

  /** Records every event of a consumer; advisories as `action[:topic]`. */
  const recorder = () => {
    const events: PgHubEvent[] = [];
    const advisories: string[] = [];
    const hook = (event: PgHubEvent): void => {
      if (isAdvisory(event)) {
        const value: PgHubAdvisory = event.value;
        advisories.push(value.topic ? `${value.action}:${value.topic}` : value.action);
      } else events.push(event);
    };
    return { events, advisories, hook };
  };

  /** Terminates our hub's LISTEN backend only, found by its application_name. */
  const killListen = async (hub: PgHub, applicationName: string): Promise<number> => {
    const pid = hub.listenProcessId;
    const result = await admin.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid = $2',
      [`${applicationName}/listen`, pid],
    );
    return result.rowCount ?? 0;
  };

  beforeAll(() => {
    admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
  });

  afterEach(async () => {
    await Promise.all(hubs.splice(0).map(hub => hub.stop({ wait: false })));
    await Promise.all(proxies.splice(0).map(proxy => proxy.close()));
  });

  afterAll(async () => {
    await admin.end();
  });

  it('delivers notify -> consumer with key and value, advisories first, subscribe only after LISTEN', async () => {
    const t = topic('basic');
    const hub = makeHub();
    const rec = recorder();
    const late: string[] = [];
    // On its subscribe advisory the consumer makes the database notify at once:
    // that notify arrives only if the LISTEN really ran before the advisory.
    hub.consumer(event => {
      if (isAdvisory(event) && event.value.action === 'subscribe') {
        void admin.query('SELECT pg_notify($1, $2)', [t, 'e:"right after subscribe"']);
      }
      rec.hook(event);
      if (!isAdvisory(event)) late.push(event.value as string);
    }, t);
    await hub.start();
    expect(hub.state).toBe('connected');
    await waitFor(() => late.includes('right after subscribe'));
    await hub.notify(t, [1n, -2n], { a: 'é $ 😀' });
    await hub.notify(t);
    await waitFor(() => rec.events.length === 3);
    expect(rec.advisories).toEqual(['connect', `subscribe:${t}`]);
    expect(rec.events[1]).toMatchObject({ topic: t, key: [1n, -2n], value: { a: 'é $ 😀' } });
    expect(rec.events[2]).toMatchObject({ topic: t, key: [], value: null });
    expect(typeof rec.events[1].processId).toBe('number');
    expect(await hub.listeningChannels()).toEqual([t]);
    const stats = hub.stats();
    expect(stats).toMatchObject({
      rxEventCount: 3,
      notifyCount: 2,
      connectCount: 1,
      listenCount: 1,
      consumerCount: 1,
    });
  });

  it('UNLISTENs a topic when its last consumer leaves; close and stop are final advisories', async () => {
    const [a, b] = [topic('ua'), topic('ub')];
    const hub = makeHub();
    await hub.start();
    const one = recorder();
    const two = recorder();
    const c1 = hub.consumer(one.hook, a, b);
    const c2 = hub.consumer(two.hook);
    await c1.subscribe(a, b);
    await c2.subscribe(b);
    expect(await hub.listeningChannels()).toEqual([a, b].sort());
    c1.close();
    c1.close();
    await waitFor(async () => (await hub.listeningChannels()).join() === b);
    await waitFor(() => one.advisories.includes('close'));
    expect(c1.closed).toBe(true);
    await expect(c1.subscribe(a)).rejects.toThrow(TransportClosedError);
    await hub.notify(b, 1n, 'to two');
    await waitFor(() => two.events.length === 1);
    expect(one.events).toEqual([]);
    await hub.stop();
    expect(two.advisories).toEqual([`subscribe:${b}`, 'stop']);
    expect(one.advisories).toEqual([`subscribe:${a}`, `subscribe:${b}`, 'close']);
    expect(() => hub.notify(b, 1n, 1)).toThrow(TransportClosedError);
    expect(() => hub.consumer(() => undefined)).toThrow(TransportClosedError);
    await hub.stop();
    expect(hub.state).toBe('stopped');
    expect(hub.stats().unlistenCount).toBe(1);
  });

  it('rejects bad topics with InvalidTopicError at the call', async () => {
    const hub = makeHub();
    const consumer = hub.consumer(() => undefined);
    for (const bad of ['Orders', '1abc', '', 'a'.repeat(64), 'a-b', 'ordérs']) {
      expect(() => hub.notify(bad, 1n, 1)).toThrow(InvalidTopicError);
      expect(() => hub.consumer(() => undefined, 'ok_topic', bad)).toThrow(InvalidTopicError);
      expect(() => consumer.subscribe(bad)).toThrow(InvalidTopicError);
    }
    expect(consumer.topics).toEqual([]);
    expect(hub.stats().queued).toBe(0);
  });

  it('refuses payloads of 8000 bytes or more before queueing; 7999 goes through', async () => {
    const t = topic('limit');
    const hub = makeHub();
    const rec = recorder();
    await hub.consumer(rec.hook, t).subscribe();
    await hub.start();
    await waitFor(() => rec.advisories.length === 2);
    // 'e1:"' + body + '"' = body + 5 bytes.
    const fits = 'x'.repeat(7999 - 5);
    expect(() => hub.notify(t, 1n, fits + 'x')).toThrow(PayloadTooLargeError);
    // A non-ASCII character counts as its 6-byte escape.
    expect(() => hub.notify(t, 1n, 'x'.repeat(7999 - 5 - 5) + 'é')).toThrow(PayloadTooLargeError);
    expect(hub.stats().queued).toBe(0);
    await expect(hub.notify(t, 1n, fits)).resolves.toBe(true);
    await waitFor(() => rec.events.length === 1);
    expect(rec.events[0].value).toBe(fits);
  });

  it('gives N deliveries for N identical notifies despite PostgreSQL folding them', async () => {
    const t = topic('same');
    const hub = makeHub();
    const rec = recorder();
    hub.consumer(rec.hook, t);
    await hub.start();
    await waitFor(() => rec.advisories.length === 2);
    const sent = await Promise.all(
      Array.from({ length: 40 }, () => hub.notify(t, 7n, { same: true })),
    );
    expect(sent.every(Boolean)).toBe(true);
    await waitFor(() => rec.events.length === 40);
    await hub.notify(t, 8n, 'marker');
    await waitFor(() => rec.events.length === 41);
    expect(rec.events.filter(e => e.key[0] === 7n)).toHaveLength(40);
  });

  it('batches notifies; a failing batch is retried one by one and loses none of its neighbours', async () => {
    const t = topic('batch');
    // A hub that believes the limit is higher than the server's: the server
    // refuses the big one, which fails its whole batch.
    const hub = makeHub({ batchSize: 10, maxPayloadBytes: 9000 });
    const rec = recorder();
    hub.consumer(rec.hook, t);
    await hub.start();
    await waitFor(() => rec.advisories.length === 2);
    const before = hub.stats().notifyBatchCount;
    const confirms: boolean[] = [];
    const results = Array.from({ length: 30 }, (_, i) =>
      hub.notify(t, BigInt(i), i === 14 ? 'x'.repeat(8500) : i, {
        confirm: sent => void confirms.push(sent),
      }),
    );
    const settled = await Promise.allSettled(results);
    const rejected = settled.filter(s => s.status === 'rejected') as PromiseRejectedResult[];
    expect(rejected).toHaveLength(1);
    expect(settled[14].status).toBe('rejected');
    expect((rejected[0].reason as { code?: string }).code).toBe('22023');
    await waitFor(() => rec.events.length === 29);
    expect(rec.events.map(e => Number(e.key[0]))).toEqual(
      Array.from({ length: 30 }, (_, i) => i).filter(i => i !== 14),
    );
    const stats = hub.stats();
    // ceil(30 / 10) batches plus 10 single retries of the failed one.
    expect(stats.notifyBatchCount - before).toBeLessThanOrEqual(3 + 10);
    expect(stats).toMatchObject({ notifyRetryCount: 1, notifyFailCount: 1 });
    expect(confirms.filter(x => !x)).toHaveLength(1);
    expect(confirms).toHaveLength(30);
  });

  it('never delivers a notify made inside a rolled-back transaction; a committed one arrives', async () => {
    const t = topic('tx');
    const hub = makeHub();
    const rec = recorder();
    hub.consumer(rec.hook, t);
    await hub.start();
    await waitFor(() => rec.advisories.length === 2);
    const client = await admin.connect();
    try {
      await client.query('BEGIN');
      await expect(hub.notify(t, 1n, 'rolled back', { client })).resolves.toBe(true);
      await client.query('ROLLBACK');
      await client.query('BEGIN');
      await hub.notify(t, 2n, 'committed', { client });
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    await hub.notify(t, 3n, 'marker');
    await waitFor(() => rec.events.length >= 2);
    expect(rec.events.map(e => e.value)).toEqual(['committed', 'marker']);
  });

  it('counts undecodable payloads and keeps delivering', async () => {
    const t = topic('bad');
    const hub = makeHub();
    const rec = recorder();
    hub.consumer(rec.hook, t);
    await hub.start();
    await waitFor(() => rec.advisories.length === 2);
    for (const payload of ['garbage', 'e1:{bad', 'e1,,2', ''])
      await admin.query('SELECT pg_notify($1, $2)', [t, payload]);
    await hub.notify(t, 1n, 'good');
    await waitFor(() => rec.events.length === 1);
    expect(hub.stats().rxErrorCount).toBe(4);
  });

  it('isolates a throwing consumer hook', async () => {
    const t = topic('hook');
    const hub = makeHub();
    const rec = recorder();
    hub.consumer(() => {
      throw new Error('boom');
    }, t);
    hub.consumer(rec.hook, t);
    await hub.start();
    await waitFor(() => rec.advisories.length === 2);
    await hub.notify(t, 1n, 1);
    await waitFor(() => rec.events.length === 1);
    expect(hub.stats().hookErrorCount).toBeGreaterThanOrEqual(1);
  });

  it('survives 20 kills of its LISTEN connection under load: disconnect/reconnect in order, events flow again', async () => {
    const t = topic('kill');
    const applicationName = uniqueName('killer');
    const hub = makeHub({ applicationName });
    const rec = recorder();
    hub.consumer(rec.hook, t);
    await hub.start();
    let stop = false;
    let sent = 0;
    const load = (async () => {
      while (!stop) {
        await Promise.all(Array.from({ length: 10 }, () => hub.notify(t, BigInt(sent++), 'load')));
      }
    })();
    for (let kill = 1; kill <= 20; kill++) {
      const pid = hub.listenProcessId;
      expect(await killListen(hub, applicationName)).toBe(1);
      await waitFor(() => rec.advisories.filter(a => a === 'reconnect').length === kill, {
        timeoutMs: 10_000,
      });
      expect(hub.listenProcessId).not.toBe(pid);
    }
    stop = true;
    await load;
    expect(rec.advisories).toEqual([
      'connect',
      `subscribe:${t}`,
      ...Array.from({ length: 20 }, () => ['disconnect', 'reconnect']).flat(),
    ]);
    const count = rec.events.length;
    await hub.notify(t, -1n, 'after');
    await waitFor(() => rec.events.some(e => e.value === 'after'));
    expect(rec.events.length).toBeGreaterThan(count);
    expect(await hub.listeningChannels()).toEqual([t]);
    expect(hub.stats()).toMatchObject({ disconnectCount: 20, connectCount: 21 });
    expect(sent).toBeGreaterThan(0);
  });

  it('keeps notifies made during an outage (TCP proxy cut) and sends them after reconnect', async () => {
    const t = topic('outage');
    const { host, port } = hostPort(PG_URL);
    const proxy = new TcpProxy(host, port);
    proxies.push(proxy);
    await proxy.start();
    const hub = makeHub({ connectionString: proxy.url(PG_URL), reconnectMs: 100 });
    const rec = recorder();
    hub.consumer(rec.hook, t);
    await hub.start();
    await hub.notify(t, 0n, 'before');
    await waitFor(() => rec.events.length === 1);
    proxy.cut();
    await waitFor(() => rec.advisories.includes('disconnect'));
    const during = Array.from({ length: 10 }, (_, i) =>
      hub.notify(t, BigInt(i + 1), `during ${i}`),
    );
    await waitFor(() => hub.stats().connectFailCount >= 1);
    expect(hub.stats().queued).toBe(10);
    proxy.restore();
    expect(await Promise.all(during)).toEqual(Array(10).fill(true));
    await waitFor(() => rec.events.length === 11);
    expect(rec.events.slice(1).map(e => e.value)).toEqual(
      Array.from({ length: 10 }, (_, i) => `during ${i}`),
    );
    expect(rec.advisories).toEqual(['connect', `subscribe:${t}`, 'disconnect', 'reconnect']);
  });

  it('bounds the queue while disconnected (QueueFullError) and confirms false on stop', async () => {
    const t = topic('full');
    const { host, port } = hostPort(PG_URL);
    const proxy = new TcpProxy(host, port);
    proxies.push(proxy);
    await proxy.start();
    proxy.cut();
    const hub = makeHub({ connectionString: proxy.url(PG_URL), maxQueue: 3 });
    void hub.start().catch(() => undefined);
    const confirms: boolean[] = [];
    const queued = [1, 2, 3].map(i =>
      hub.notify(t, BigInt(i), i, { confirm: sent => void confirms.push(sent) }),
    );
    expect(() => hub.notify(t, 4n, 4)).toThrow(QueueFullError);
    await hub.stop({ wait: false });
    expect(await Promise.all(queued)).toEqual([false, false, false]);
    expect(confirms).toEqual([false, false, false]);
    expect(hub.stats().notifyCancelCount).toBe(3);
  });

  it('stop({ wait: true }) sends what is queued first', async () => {
    const t = topic('drain');
    const hub = makeHub();
    const other = makeHub();
    const rec = recorder();
    other.consumer(rec.hook, t);
    await other.start();
    await hub.start();
    await waitFor(() => rec.advisories.length === 2);
    const results = Array.from({ length: 50 }, (_, i) => hub.notify(t, BigInt(i), i));
    await hub.stop({ wait: true });
    expect((await Promise.all(results)).every(Boolean)).toBe(true);
    await waitFor(() => rec.events.length === 50);
  });
});

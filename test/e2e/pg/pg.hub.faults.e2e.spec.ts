import pg from 'pg';
import {
  PgHub,
  isAdvisory,
  type PgConsumer,
  type PgHubEvent,
  type PgHubOptions,
} from '../../../lib/pg/index.js';
import type { HeraldLogger } from '../../../lib/index.js';
import { PG_URL, hostPort, uniqueName } from '../../helpers/services.js';
import { TcpProxy } from '../../helpers/tcp-proxy.js';
import { waitFor } from '../../helpers/wait-for.js';

/** A topic no other test uses (lower case, < 63 bytes). */
const topic = (prefix: string): string => uniqueName(prefix).toLowerCase().slice(0, 60);

/** Issue 18 point 1: re-entrant hooks, shared events, pool exhaustion, silent loss. */
describe('PgHub faults (issue 18)', () => {
  let admin: pg.Pool;
  const hubs: PgHub[] = [];
  const proxies: TcpProxy[] = [];

  const makeHub = (options: PgHubOptions = {}): PgHub => {
    const hub = new PgHub({
      connectionString: PG_URL,
      reconnectMs: 50,
      applicationName: uniqueName('hubfault'),
      ...options,
    });
    hubs.push(hub);
    return hub;
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

  it('a consumer made in a subscribe hook, on a topic already LISTENed: one subscribe each', async () => {
    const t = topic('reenter');
    const hub = makeHub();
    await hub.start();
    const advisories = new Map<string, string[]>();
    const record = (name: string) => (event: PgHubEvent) => {
      if (!isAdvisory(event)) return;
      const list = advisories.get(name) ?? [];
      list.push(event.value.action);
      advisories.set(name, list);
    };
    await hub.consumer(record('other'), t).subscribe();
    let made = false;
    const first = record('first');
    hub.consumer(event => {
      first(event);
      if (isAdvisory(event) && event.value.action === 'subscribe' && !made) {
        made = true;
        hub.consumer(record('second'), t);
      }
    }, t);
    await waitFor(() => advisories.get('second')?.includes('subscribe'));
    await hub.notify(t, 1n, 'x');
    await hub.stop();
    expect(advisories.get('first')).toEqual(['subscribe', 'stop']);
    expect(advisories.get('second')).toEqual(['subscribe', 'stop']);
    expect(advisories.get('other')).toEqual(['subscribe', 'stop']);
  });

  it('a 256-consumer daisy chain (each subscribe hook makes the next) stops cleanly: one subscribe and one final advisory each', async () => {
    const t = topic('daisy');
    const hub = makeHub();
    const seen: Map<string, number>[] = [];
    const make = (index: number): PgConsumer => {
      const counts = new Map<string, number>();
      seen.push(counts);
      return hub.consumer(event => {
        if (!isAdvisory(event)) return;
        const action = event.value.final ? `final:${event.value.action}` : event.value.action;
        counts.set(action, (counts.get(action) ?? 0) + 1);
        if (event.value.action === 'subscribe' && index + 1 < 256) make(index + 1);
      }, t);
    };
    make(0);
    await hub.start();
    await waitFor(() => seen.length === 256 && seen[255].get('subscribe') === 1, {
      message: 'the chain did not reach 256 consumers',
    });
    await hub.stop();
    expect(hub.state).toBe('stopped');
    seen.forEach((counts, index) => {
      expect({
        index,
        subscribe: counts.get('subscribe'),
        final: counts.get('final:stop'),
      }).toEqual({ index, subscribe: 1, final: 1 });
      const total = [...counts.values()].reduce((a, b) => a + b, 0);
      // The first consumer existed before start: it also got `connect`.
      expect(total).toBe(index === 0 ? 3 : 2);
    });
    expect(hub.stats().consumerCount).toBe(0);
  });

  it('every consumer gets the same deep-frozen event: one cannot change what the next sees', async () => {
    const t = topic('frozen');
    const hub = makeHub();
    const seen: unknown[] = [];
    const hooks = [0, 1, 2].map(i => (event: PgHubEvent) => {
      if (isAdvisory(event)) return;
      if (i === 0) {
        // Strict mode (ESM): each write to a frozen object throws.
        const value = event.value as { x?: number; list: number[]; nested: { y: number } };
        delete value.x;
      }
      seen.push(structuredClone(event.value));
    });
    await Promise.all(hooks.map(hook => hub.consumer(hook, t).subscribe()));
    await hub.start();
    await hub.notify(t, 7n, { x: 1, list: [1, 2], nested: { y: 2 } });
    await waitFor(() => seen.length === 2 && hub.stats().hookErrorCount === 1);
    expect(seen).toEqual([
      { x: 1, list: [1, 2], nested: { y: 2 } },
      { x: 1, list: [1, 2], nested: { y: 2 } },
    ]);

    // Deep: nested objects and arrays, the key, the event itself.
    const frozen: PgHubEvent[] = [];
    hub.consumer(event => void (isAdvisory(event) || frozen.push(event)), t);
    await waitFor(() => hub.listeningTopics.includes(t));
    await hub.notify(t, [1n, 2n], { list: [{ a: 1 }], nested: { y: [2] } });
    await waitFor(() => frozen.length === 1);
    const event = frozen[0];
    const value = event.value as { list: { a: number }[]; nested: { y: number[] } };
    expect(Object.isFrozen(event)).toBe(true);
    expect(Object.isFrozen(event.key)).toBe(true);
    expect(Object.isFrozen(value.list[0])).toBe(true);
    expect(Object.isFrozen(value.nested.y)).toBe(true);
    expect(() => value.nested.y.push(3)).toThrow(TypeError);
  });

  it.each([1, 2])(
    'with poolSize %i the LISTEN connection is never the pool’s: notifies flow, nothing hangs',
    async poolSize => {
      const t = topic('poolsize');
      const hub = makeHub({ poolSize });
      const got: unknown[] = [];
      hub.consumer(event => void (isAdvisory(event) || got.push(event.value)), t);
      await hub.start();
      expect(hub.pool.totalCount).toBe(0);
      // Every pool connection busy with a slow query: the LISTEN connection still delivers.
      const slow = Array.from({ length: poolSize }, () => hub.pool.query('SELECT pg_sleep(0.3)'));
      await admin.query('SELECT pg_notify($1, $2)', [t, 'e1:"from outside"']);
      await waitFor(() => got.length === 1);
      await Promise.all(slow);
      await Promise.all(Array.from({ length: 20 }, (_, i) => hub.notify(t, BigInt(i), i)));
      await waitFor(() => got.length === 21);
      expect(hub.pool.totalCount).toBeLessThanOrEqual(poolSize);
      const listen = await admin.query<{ n: string }>(
        'SELECT count(*) AS n FROM pg_stat_activity WHERE pid = $1',
        [hub.listenProcessId],
      );
      expect(listen.rows[0].n).toBe('1');
    },
  );

  it('a black-holed LISTEN connection (no RST) is noticed within heartbeatMs + heartbeatTimeoutMs: WARN with the reason, INFO on recovery', async () => {
    const { host, port } = hostPort(PG_URL);
    const proxy = new TcpProxy(host, port);
    proxies.push(proxy);
    await proxy.start();
    const lines: string[] = [];
    const logger: HeraldLogger = {
      log: message => void lines.push(`INFO ${message}`),
      warn: message => void lines.push(`WARN ${message}`),
      error: message => void lines.push(`ERROR ${message}`),
    };
    const t = topic('blackhole');
    const hub = makeHub({
      connectionString: proxy.url(PG_URL),
      heartbeatMs: 100,
      heartbeatTimeoutMs: 200,
      logger,
    });
    const advisories: string[] = [];
    const got: unknown[] = [];
    hub.consumer(event => {
      if (isAdvisory(event)) advisories.push(event.value.action);
      else got.push(event.value);
    }, t);
    await hub.start();
    proxy.blackhole();
    await waitFor(() => advisories.includes('reconnect'));
    expect(advisories).toEqual(['connect', 'subscribe', 'disconnect', 'reconnect']);
    const warn = lines.find(
      line => line.startsWith('WARN') && line.includes('LISTEN connection lost'),
    );
    expect(warn).toMatch(/no answer to the heartbeat within 200 ms/);
    expect(lines.find(line => line.startsWith('INFO'))).toMatch(
      /^INFO pg listen-recovered: LISTEN connection back after \d+ ms; .* \[hub=\S+ downtimeMs=\d+\]$/,
    );
    await hub.notify(t, 1n, 'after');
    await waitFor(() => got.length === 1);
  });
});

import pg from 'pg';
import { z } from 'zod';
import { EventBus, type EventSchemas, type HeraldEvent } from '../../../lib/index.js';
import {
  PgOutboxSchemaError,
  PgTransport,
  type PgDurableOptions,
  type PgTransportOptions,
} from '../../../lib/pg/index.js';
import { memoryLogger } from '../../helpers/memory-logger.js';
import { hostPort, PG_URL, uniqueName } from '../../helpers/services.js';
import { TcpProxy } from '../../helpers/tcp-proxy.js';
import { waitFor } from '../../helpers/wait-for.js';

/**
 * Issue 19: `pg: { durable: true }` against the real PostgreSQL. Every test
 * has its own outbox table and channel. Waits are generous: the visibility
 * horizon is the whole server's oldest open transaction, and the server is
 * shared.
 */
describe('PgTransport durable (issue 19)', () => {
  let admin: pg.Pool;
  const buses: EventBus[] = [];
  const tables: string[] = [];
  const clients: pg.PoolClient[] = [];
  const LONG = { timeoutMs: 60_000 };

  interface Made {
    bus: EventBus;
    transport: PgTransport;
    got: HeraldEvent[];
    logger: ReturnType<typeof memoryLogger>;
  }

  const start = async (
    place: { table: string; channel: string },
    durable: PgDurableOptions = {},
    options: PgTransportOptions = {},
    handler?: (event: HeraldEvent) => unknown,
    schemas?: EventSchemas,
  ): Promise<Made> => {
    const logger = memoryLogger();
    const transport = new PgTransport({
      connectionString: PG_URL,
      reconnectMs: 50,
      channel: place.channel,
      poolSize: 4,
      ...options,
      durable: { table: place.table, pollMs: 200, cleanupIntervalMs: 0, ...durable },
    });
    const bus = new EventBus({ logger, transport, schemas });
    buses.push(bus);
    await bus.connect();
    bus.start();
    await bus.waitUntilReady();
    const got: HeraldEvent[] = [];
    bus.register((_data, event) => {
      got.push(event);
      return handler?.(event);
    });
    return { bus, transport, got, logger };
  };

  const place = (): { table: string; channel: string } => {
    const table = uniqueName('ob').toLowerCase();
    tables.push(table);
    return { table, channel: uniqueName('dch').toLowerCase() };
  };

  const close = async (made: Made): Promise<void> => {
    await made.bus.close({ timeoutMs: 5000 });
    buses.splice(buses.indexOf(made.bus), 1);
  };

  const tx = async (): Promise<pg.PoolClient> => {
    const client = await admin.connect();
    clients.push(client);
    await client.query('BEGIN');
    return client;
  };

  beforeAll(() => {
    admin = new pg.Pool({ connectionString: PG_URL, max: 6 });
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release();
    }
    await Promise.all(buses.splice(0).map(b => b.close({ timeoutMs: 5000 })));
    for (const table of tables.splice(0)) {
      for (const suffix of ['', '_consumers', '_dead'])
        await admin.query(`DROP TABLE IF EXISTS ${table}${suffix}`);
    }
  });

  afterAll(async () => {
    await admin.end();
  });

  it('delivers posts at least once, reports at-least-once features, and writes the outbox in one transaction with the wake-up', async () => {
    const at = place();
    const r = await start(at);
    expect(r.transport.features).toMatchObject({
      guarantee: 'at-least-once',
      redelivers: true,
      persistent: true,
    });
    for (let i = 0; i < 50; i++) await r.bus.post('orders', 'created', { i });
    await waitFor(() => r.got.length === 50, LONG);
    expect(r.got.map(e => (e.data as { i: number }).i)).toEqual([...Array(50).keys()]);
    const { rows } = await admin.query(`SELECT count(*)::int AS n FROM ${at.table}`);
    expect(rows[0].n).toBe(50);
    const stats = r.transport.stats();
    expect(stats.outboxWritten).toBe(50);
    expect(stats.acked).toBe(50);
    expect(stats.heartbeatAgeMs).toBeGreaterThanOrEqual(0);
  });

  it('a post in your transaction is delivered if it commits, never if it rolls back', async () => {
    const at = place();
    const r = await start(at);
    const rolled = await tx();
    await r.bus.post('orders', 'rolled', {}, { tx: rolled });
    await rolled.query('ROLLBACK');
    const committed = await tx();
    await r.bus.post('orders', 'kept', {}, { tx: committed });
    await committed.query('COMMIT');
    await r.bus.post('orders', 'after', {});
    await waitFor(() => r.got.some(e => e.event === 'after'), LONG);
    expect(r.got.map(e => e.event)).toEqual(['kept', 'after']);
  });

  it('never skips a transaction that commits after a younger one: A open, B commits, the reader reads, A commits -> A delivered (xid order)', async () => {
    const at = place();
    const r = await start(at, { consumer: 'ooo' });
    await r.bus.post('t', 'first', {});
    await waitFor(() => r.got.length === 1, LONG);

    const a = await tx();
    await r.bus.post('t', 'A', {}, { tx: a }); // A inserts (its xid is the older) and stays open
    const b = await tx();
    await r.bus.post('t', 'B', {}, { tx: b });
    await b.query('COMMIT'); // B commits first: its NOTIFY wakes the reader
    const held = r.transport.stats().outboxHeldBack;
    // The reader has read after B's commit and stopped at the horizon (A is open).
    await waitFor(() => r.transport.stats().outboxHeldBack > held, LONG);
    expect(r.got.map(e => e.event)).toEqual(['first']);

    await a.query('COMMIT');
    await waitFor(() => r.got.length === 3, LONG);
    // Order across transactions: by transaction id (A's is older), each once.
    expect(r.got.map(e => e.event)).toEqual(['first', 'A', 'B']);
  });

  it('delivers every committed event through 20 kills of the LISTEN backend under load', async () => {
    const at = place();
    const r = await start(at, { consumer: 'kill-me' }, { applicationName: 'herald-durable-kill' });
    const p = await start(at);
    const sent = new Set<string>();
    let posting = true;
    const poster = (async () => {
      let n = 0;
      while (posting) {
        const batch = Array.from({ length: 20 }, () => p.bus.post('load', 'tick', { n: n++ }));
        for (const receipt of await Promise.all(batch)) sent.add(receipt.id);
      }
    })();
    for (let kill = 0; kill < 20; kill++) {
      await waitFor(() => r.transport.hub.state === 'connected' && r.transport.hub.listenProcessId);
      const pid = r.transport.hub.listenProcessId!;
      const before = sent.size;
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      await waitFor(
        () =>
          r.transport.hub.state === 'connected' &&
          r.transport.hub.listenProcessId !== undefined &&
          r.transport.hub.listenProcessId !== pid &&
          sent.size > before,
        LONG,
      );
    }
    posting = false;
    await poster;
    const ids = (): Set<string> => new Set(r.got.map(e => e.id));
    await waitFor(() => [...sent].every(id => ids().has(id)), LONG);
    expect(r.transport.stats().disconnectCount).toBeGreaterThanOrEqual(20);
    const duplicates = r.got.length - ids().size;
    console.log(
      `durable LISTEN kills: ${sent.size} committed, all delivered, ${duplicates} duplicate(s)`,
    );
  }, 180_000);

  it('cuts of every connection (pool and LISTEN, writer and reader) under load: every committed post delivered, duplicates counted', async () => {
    const at = place();
    const { host, port } = hostPort(PG_URL);
    const proxy = new TcpProxy(host, port);
    await proxy.start();
    try {
      const through = { connectionString: proxy.url(PG_URL) };
      const r = await start(at, { consumer: 'cut-me', retryDelayMs: 50 }, through);
      const p = await start(at, {}, through);
      const sent = new Set<string>();
      const failed: unknown[] = [];
      let posting = true;
      const poster = (async () => {
        let n = 0;
        while (posting) {
          const batch = Array.from({ length: 20 }, () =>
            p.bus.post('load', 'tick', { n: n++ }).then(
              receipt => void sent.add(receipt.id),
              (error: unknown) => void failed.push(error),
            ),
          );
          await Promise.all(batch);
        }
      })();
      for (let cut = 0; cut < 5; cut++) {
        const before = sent.size;
        await waitFor(() => sent.size > before + 20, LONG);
        proxy.cut();
        await waitFor(() => r.transport.hub.state === 'reconnecting', LONG);
        proxy.restore();
        await waitFor(() => r.transport.hub.state === 'connected', LONG);
      }
      posting = false;
      await poster;
      const ids = (): Set<string> => new Set(r.got.map(e => e.id));
      await waitFor(() => [...sent].every(id => ids().has(id)), LONG);
      expect(failed).toEqual([]);
      const stats = r.transport.stats();
      const duplicates = r.got.length - ids().size;
      console.log(
        `durable cuts: ${sent.size} committed, all delivered, ${duplicates} duplicate(s); ` +
          `reader errors ${stats.outboxErrors}, writer retries ${p.transport.stats().outboxRetries}`,
      );
    } finally {
      await Promise.all(buses.splice(0).map(b => b.close({ timeoutMs: 5000 })));
      await proxy.close();
    }
  }, 180_000);

  it('a listener stopped and restarted receives everything committed meanwhile (duplicates counted)', async () => {
    const at = place();
    let r = await start(at, { consumer: 'svc-a' });
    const p = await start(at);
    await p.bus.post('load', 'before', {});
    await waitFor(() => r.got.length === 1, LONG);
    await close(r);

    // Posts for about 5 s while svc-a is away (the catch-up depends on its
    // cursor only; the one time rule, consumerExpiryMs, is a day here).
    const sent = new Set<string>();
    const started = Date.now();
    let n = 0;
    while (Date.now() - started < 5000) {
      const batch = Array.from({ length: 10 }, () => p.bus.post('load', 'away', { n: n++ }));
      for (const receipt of await Promise.all(batch)) sent.add(receipt.id);
      await new Promise(resolve => setTimeout(resolve, 20));
    }

    r = await start(at, { consumer: 'svc-a' });
    const ids = (): Set<string> => new Set(r.got.map(e => e.id));
    await waitFor(() => [...sent].every(id => ids().has(id)), LONG);
    const duplicates = r.got.length - ids().size;
    console.log(
      `durable restart: ${sent.size} committed while away, all delivered, ${duplicates} duplicate(s)`,
    );
    expect(r.got.some(e => e.event === 'before')).toBe(false);
  }, 120_000);

  it('a nacked event is retried maxAttempts times, then moved to the dead letters with the reason; later events go on', async () => {
    const at = place();
    const attempts: number[] = [];
    const r = await start(at, { maxAttempts: 3, retryDelayMs: 20 }, {}, event => {
      if (event.event === 'bad') {
        attempts.push(event.attempt);
        throw new Error('poisoned');
      }
    });
    await r.bus.post('jobs', 'bad', { x: 1 });
    await r.bus.post('jobs', 'good', {});
    await waitFor(() => r.transport.stats().deadLettered === 1, LONG);
    expect(attempts).toEqual([1, 2, 3]);
    await waitFor(() => r.got.some(e => e.event === 'good'));
    const { rows } = await admin.query(
      `SELECT attempts, reason, payload FROM ${at.table}_dead WHERE channel = $1`,
      [at.channel],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0].attempts).toBe(3);
    expect(rows[0].reason).toMatch(/handler failed 3 time\(s\).*poisoned/);
    expect(rows[0].payload).toContain('"event":"bad"');
    expect(r.logger.lines.some(l => l.startsWith('warn pg outbox-dead-lettered:'))).toBe(true);
    expect(r.transport.stats().redelivered).toBe(2);
  });

  it('retention removes events a live consumer had not read: counted as lost and logged (by the job and by the consumer)', async () => {
    const at = place();
    let slow = await start(at, { consumer: 'slow' });
    await close(slow); // registered and recently seen: live, but away
    const p = await start(at, { retentionMs: 1 });
    for (let i = 0; i < 10; i++) await p.bus.post('x', 'y', { i });
    await waitFor(() => p.got.length === 10, LONG);
    const result = await waitFor(async () => {
      const run = await p.transport.cleanupOutbox();
      return run.deleted > 0 ? run : undefined;
    }, LONG);
    expect(result.lost.slow).toBe(10);
    expect(
      p.logger.lines.some(l => /^warn pg outbox-retention-lost: .*consumer=slow/.test(l)),
    ).toBe(true);
    expect(p.transport.stats().lostRecorded).toBeGreaterThanOrEqual(10);

    slow = await start(at, { consumer: 'slow' });
    await waitFor(() => slow.transport.stats().lost === 10, LONG);
    expect(slow.logger.lines.some(l => l.startsWith('warn pg outbox-lost: 10 event(s)'))).toBe(
      true,
    );
    expect(slow.got).toHaveLength(0);
  });

  it('keeps the newest retentionCount rows, and expires consumers unseen for consumerExpiryMs', async () => {
    const at = place();
    const gone = await start(at, { consumer: 'gone' });
    await close(gone);
    const p = await start(at, { retentionCount: 3, consumerExpiryMs: 100 });
    for (let i = 0; i < 8; i++) await p.bus.post('x', 'y', { i });
    await waitFor(() => p.got.length === 8, LONG);
    // A run before 'gone' is 100 ms unseen already trims to the newest 3 (a
    // quiet machine posts and delivers 8 events well within 100 ms): count
    // what every run deleted.
    let deleted = 0;
    await waitFor(async () => {
      const run = await p.transport.cleanupOutbox();
      deleted += run.deleted;
      return run.expired.includes('gone') ? run : undefined;
    }, LONG);
    expect(deleted).toBe(5);
    const { rows } = await admin.query(`SELECT payload FROM ${at.table} ORDER BY id`);
    expect(rows.map(row => /"i":(\d)/.exec(row.payload)![1])).toEqual(['5', '6', '7']);
    expect(
      p.logger.lines.some(l => /^warn pg outbox-consumer-expired: .*consumer=gone/.test(l)),
    ).toBe(true);
  });

  it('unique events run once across durable listeners', async () => {
    const at = place();
    const a = await start(at);
    const b = await start(at);
    await a.bus.post('jobs', 'run', {}, { unique: `job-${at.channel}` });
    await a.bus.post('jobs', 'run', {}, { unique: `job-${at.channel}` });
    await a.bus.post('jobs', 'marker', {});
    // A unique row runs once its claim is won, so it may come after the
    // marker: wait until each listener settled both 'run' rows (run here, or
    // dropped as a duplicate), whichever order their claims took.
    const runs = (): HeraldEvent[] => [...a.got, ...b.got].filter(e => e.event === 'run');
    const duplicates = (): number =>
      a.transport.stats().duplicates + b.transport.stats().duplicates;
    await waitFor(
      () =>
        a.got.some(e => e.event === 'marker') &&
        b.got.some(e => e.event === 'marker') &&
        runs().length + duplicates() === 4,
      LONG,
    );
    expect(runs()).toHaveLength(1);
  });

  it('refuses to start without the privilege to create the tables, naming it', async () => {
    const role = uniqueName('herald_noc').toLowerCase();
    await admin.query(`CREATE ROLE ${role} LOGIN`);
    try {
      const url = new URL(PG_URL);
      url.username = role;
      const at = place();
      const transport = new PgTransport({
        connectionString: url.toString(),
        channel: at.channel,
        durable: { table: at.table },
      });
      const bus = new EventBus({ logger: memoryLogger(), transport });
      buses.push(bus);
      const failed = await bus.connect().then(
        () => undefined,
        (error: unknown) => error,
      );
      const error =
        failed instanceof PgOutboxSchemaError ? failed : (failed as { cause?: unknown })?.cause;
      expect(error).toBeInstanceOf(PgOutboxSchemaError);
      expect((error as Error).message).toMatch(/CREATE privilege/);
      await bus.close({ timeoutMs: 2000 });
      buses.splice(buses.indexOf(bus), 1);

      // With the tables made by an owner, a role without DELETE is told which privilege is missing.
      await admin.query((await import('../../../lib/pg/index.js')).pgOutboxMigrationSql(at.table));
      await admin.query(`GRANT SELECT, INSERT ON ${at.table} TO ${role}`);
      const checked = new PgTransport({
        connectionString: url.toString(),
        channel: at.channel,
        durable: { table: at.table, createTables: false },
      });
      const second = new EventBus({ logger: memoryLogger(), transport: checked });
      buses.push(second);
      const refused = await second.connect().then(
        () => undefined,
        (e: unknown) => e,
      );
      const cause =
        refused instanceof PgOutboxSchemaError ? refused : (refused as { cause?: unknown })?.cause;
      expect((cause as Error).message).toMatch(/lacks the DELETE privilege on "ob_/);
      await second.close({ timeoutMs: 2000 });
      buses.splice(buses.indexOf(second), 1);
    } finally {
      await admin.query(`DROP OWNED BY ${role}`).catch(() => undefined);
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
    }
  });

  // Issue 27 point 3: an event its schema refuses on arrival (posted by a
  // peer without the schema) goes to the dead letters at once, not after
  // maxAttempts handler failures.
  it('dead-letters an invalid arrival on its first delivery; a valid one is handled with the output', async () => {
    const at = place();
    const schemas = { orders: { paid: z.object({ amount: z.coerce.number() }) } };
    const receiver = await start(
      at,
      { consumer: 'receiver', maxAttempts: 5 },
      {},
      undefined,
      schemas,
    );
    const seen: unknown[] = [];
    receiver.bus.register(data => void seen.push(data), 'orders', 'paid');
    const peer = await start(at, { consumer: 'peer', maxAttempts: 5 });

    await peer.bus.post('orders', 'paid', { amount: 'nope' });
    await waitFor(() => receiver.transport.stats().deadLettered === 1, LONG);
    const { rows } = await admin.query(
      `SELECT attempts, reason FROM ${at.table}_dead WHERE channel = $1`,
      [at.channel],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0].attempts).toBe(1);
    expect(rows[0].reason).toMatch(/^undecodable: .*orders\/paid data is invalid at data\.amount/);
    expect(receiver.bus.stats()).toMatchObject({ invalid: 1, failed: 0, handled: 0 });
    expect(receiver.transport.stats().redelivered).toBe(0);

    await peer.bus.post('orders', 'paid', { amount: '4' });
    await waitFor(() => seen.length === 1, LONG);
    expect(seen).toEqual([{ amount: 4 }]);
  }, 120_000);
});

import pg from 'pg';
import { EventBus, type HeraldEvent, type HeraldLogger } from '../../../lib/index.js';
import { PgTransport, type PgTransportOptions } from '../../../lib/pg/index.js';
import { PG_URL, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';

/** Issue 18 point 1, transport side: claims that never block, a bounded inbox, a loud loss. */
describe('PgTransport faults (issue 18)', () => {
  let admin: pg.Pool;
  const buses: EventBus[] = [];
  const tables: string[] = [];
  const holders: pg.PoolClient[] = [];

  const recordingLogger = (lines: string[]): HeraldLogger => ({
    log: message => void lines.push(`INFO ${message}`),
    warn: message => void lines.push(`WARN ${message}`),
    error: message => void lines.push(`ERROR ${message}`),
  });

  const bus = async (
    options: PgTransportOptions,
    lines: string[] = [],
  ): Promise<{ bus: EventBus; transport: PgTransport; got: HeraldEvent[] }> => {
    const transport = new PgTransport({
      connectionString: PG_URL,
      reconnectMs: 50,
      channel: uniqueName('tfault').toLowerCase(),
      ...options,
    });
    const made = new EventBus({
      logger: recordingLogger(lines),
      transport,
      unique: { ttlMs: 60_000 },
    });
    buses.push(made);
    await made.connect();
    made.start();
    await made.waitUntilReady();
    const got: HeraldEvent[] = [];
    made.register((_data, event) => void got.push(event));
    return { bus: made, transport, got };
  };

  /** A claims table of this test, with rows held (uncommitted) by another transaction. */
  const holdClaims = async (table: string, keys: string[]): Promise<pg.PoolClient> => {
    tables.push(table);
    await admin.query(
      `CREATE UNLOGGED TABLE ${table} (key text PRIMARY KEY, id text NOT NULL, expires_at timestamptz NOT NULL)`,
    );
    const holder = await admin.connect();
    holders.push(holder);
    await holder.query('BEGIN');
    for (const key of keys) {
      await holder.query(`INSERT INTO ${table} VALUES ($1, 'holder', now() + interval '1 hour')`, [
        key,
      ]);
    }
    return holder;
  };

  beforeAll(() => {
    admin = new pg.Pool({ connectionString: PG_URL, max: 4 });
  });

  afterEach(async () => {
    for (const holder of holders.splice(0)) {
      await holder.query('ROLLBACK').catch(() => undefined);
      holder.release();
    }
    await Promise.all(buses.splice(0).map(b => b.close({ timeoutMs: 2000 })));
    for (const table of tables.splice(0)) await admin.query(`DROP TABLE IF EXISTS ${table}`);
  });

  afterAll(async () => {
    await admin.end();
  });

  it('a unique claim stuck on a row lock never holds back other events, and times out counted and logged', async () => {
    const table = uniqueName('claims').toLowerCase();
    const lines: string[] = [];
    const channel = uniqueName('stuck').toLowerCase();
    await holdClaims(table, [`${channel}:job-1`]);
    const {
      bus: b,
      transport,
      got,
    } = await bus({ channel, uniqueTable: table, claimTimeoutMs: 300 }, lines);
    await b.post('jobs', 'run', 1, { unique: 'job-1' });
    for (let i = 0; i < 50; i++) await b.post('plain', 'x', i);
    await b.post('jobs', 'run', 2, { unique: 'job-2' });
    await waitFor(() => got.filter(e => e.source === 'plain').length === 50);
    await waitFor(() => got.some(e => e.source === 'jobs' && e.data === 2));
    await waitFor(() => transport.stats().claimErrors === 1);
    expect(got.filter(e => e.source === 'jobs').map(e => e.data)).toEqual([2]);
    expect(lines.find(line => line.includes('cannot claim unique event'))).toMatch(
      /pg unique-claim-failed: cannot claim unique event jobs\/run \(id [0-9a-f-]+, key job-1\), dropped: .*(lock timeout|statement timeout).* \[source=jobs event=run id=\S+ unique=job-1\]/,
    );
  });

  it('unique events waiting for claims are bounded: past maxPendingClaims one is dropped, counted and logged', async () => {
    const table = uniqueName('claims').toLowerCase();
    const lines: string[] = [];
    const channel = uniqueName('bound').toLowerCase();
    const holder = await holdClaims(
      table,
      ['a', 'b', 'c'].map(k => `${channel}:${k}`),
    );
    const {
      bus: b,
      transport,
      got,
    } = await bus(
      { channel, uniqueTable: table, claimTimeoutMs: 30_000, maxPendingClaims: 2 },
      lines,
    );
    for (const key of ['a', 'b', 'c']) await b.post('jobs', key, key, { unique: key });
    await waitFor(() => transport.stats().claimsDropped === 1);
    expect(transport.stats().pendingClaims).toBe(2);
    expect(lines.find(line => line.includes('dropped unique event'))).toMatch(
      /WARN pg unique-claims-full: dropped unique event jobs\/c \(id [0-9a-f-]+, key c\): .* \[source=jobs event=c id=\S+ unique=c\]/,
    );
    await b.post('plain', 'x', 1);
    await waitFor(() => got.some(e => e.source === 'plain'));
    // The holder gives up its rows: the two waiting claims win and run.
    await holder.query('ROLLBACK');
    await waitFor(() => got.filter(e => e.source === 'jobs').length === 2);
    expect(
      got
        .filter(e => e.source === 'jobs')
        .map(e => e.data)
        .sort(),
    ).toEqual(['a', 'b']);
  });

  it.each([1, 2])(
    'with poolSize %i claims, notifies and LISTEN never wait on each other',
    async poolSize => {
      const table = uniqueName('claims').toLowerCase();
      tables.push(table);
      const { bus: b, got } = await bus({ poolSize, uniqueTable: table });
      const posts: Promise<unknown>[] = [];
      for (let i = 0; i < 40; i++) {
        posts.push(b.post('mixed', 'x', i, i % 2 === 0 ? { unique: `k-${i}` } : {}));
      }
      await Promise.all(posts);
      await waitFor(() => got.length === 40);
    },
  );

  it('under a bus, losing the LISTEN connection logs WARN with the reason and INFO on recovery', async () => {
    const lines: string[] = [];
    const applicationName = uniqueName('tloss');
    const { bus: b, transport, got } = await bus({ applicationName }, lines);
    const result = await admin.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid = $2',
      [`${applicationName}/listen`, transport.hub.listenProcessId],
    );
    expect(result.rowCount).toBe(1);
    await waitFor(() => lines.some(line => line.startsWith('INFO') && line.includes('back after')));
    expect(lines.find(line => line.startsWith('WARN'))).toMatch(
      /WARN pg listen-lost: LISTEN connection lost \(.*terminat.*\); .* \[hub=herald\]/,
    );
    expect(lines.find(line => line.startsWith('INFO'))).toMatch(
      /INFO pg listen-recovered: LISTEN connection back after \d+ ms; .* \[hub=herald downtimeMs=\d+\]/,
    );
    await b.post('after', 'loss', 1);
    await waitFor(() => got.length === 1);
  });
});

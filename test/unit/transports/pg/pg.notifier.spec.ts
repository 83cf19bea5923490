import pg from 'pg';
import { silentLogger } from '../../../../lib/index.js';
import {
  NOTIFY_SEPARATOR,
  SQL_NOTIFY_MANY,
  SQL_NOTIFY_MANY_ONE_TOPIC,
  SQL_NOTIFY_PACKED,
  SQL_NOTIFY_PACKED_ONE_TOPIC,
} from '../../../../lib/transports/pg/pg.constants.js';
import {
  LARGE_NOTIFY_BATCH_BYTES,
  NOTIFY_BATCH_BYTES,
  PgNotifier,
} from '../../../../lib/transports/pg/pg.notifier.js';
import { PG_URL, uniqueName } from '../../../helpers/services.js';
import { waitFor } from '../../../helpers/wait-for.js';

/** A spied query call's statement text and parameters (text and values, or a prepared query's config). */
function statementOf(call: unknown[]): { text: string; values: unknown[]; name?: string } {
  if (typeof call[0] === 'string') return { text: call[0], values: (call[1] as unknown[]) ?? [] };
  const config = call[0] as { text: string; values?: unknown[]; name?: string };
  return { text: config.text, values: config.values ?? [], name: config.name };
}

describe('PgNotifier on a real PostgreSQL', () => {
  let pool: pg.Pool;
  let listener: pg.Client;
  const channel = uniqueName('notifier').toLowerCase();
  const got: string[] = [];

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
    listener = new pg.Client({ connectionString: PG_URL });
    await listener.connect();
    listener.on('notification', message => void got.push(message.payload ?? ''));
    await listener.query(`LISTEN ${channel}`);
  });
  afterAll(async () => {
    await listener.end();
    await pool.end();
  });

  const enqueue = (notifier: PgNotifier, topic: string, payload: string) =>
    new Promise<boolean | Error>(resolve =>
      notifier.enqueue({ topic, payload, settle: (sent, error) => resolve(error ?? sent) }),
    );

  /** A notifier of `batch` per statement on `on`, always connected, retrying after 10 ms. */
  const connectedNotifier = (on: pg.Pool, batch: number): PgNotifier =>
    new PgNotifier(
      on,
      batch,
      { isConnected: () => true, retryDelay: () => 10 },
      silentLogger,
      'unit',
    );

  it('sends in order, repeats in separate batches (never folded), one refused notify alone', async () => {
    got.length = 0;
    let connected = true;
    const notifier = new PgNotifier(
      pool,
      100,
      { isConnected: () => connected, retryDelay: () => 10 },
      silentLogger,
      'unit',
    );
    const outcomes = await Promise.all([
      enqueue(notifier, channel, 'a'),
      enqueue(notifier, channel, 'b'),
      enqueue(notifier, channel, 'a'),
      enqueue(notifier, '', 'bad'),
      enqueue(notifier, channel, 'c'),
    ]);
    expect(outcomes.slice(0, 3)).toEqual([true, true, true]);
    expect(outcomes[3]).toBeInstanceOf(Error);
    expect(outcomes[4]).toBe(true);
    await waitFor(() => got.length === 4);
    expect(got).toEqual(['a', 'b', 'a', 'c']);
    expect(notifier.counters).toMatchObject({
      notifyCount: 4,
      notifyFailCount: 1,
      notifyRetryCount: 1,
    });
    connected = false;
    const held = enqueue(notifier, channel, 'held');
    await notifier.stop();
    expect(await held).toBe(false);
    expect(notifier.counters.notifyCancelCount).toBe(1);
  });

  it('sends a batch packed or as JSON arrays alike: any text, in order, on one or many topics', async () => {
    const other = uniqueName('notifier_b').toLowerCase();
    const onOther: string[] = [];
    const second = new pg.Client({ connectionString: PG_URL });
    await second.connect();
    second.on('notification', message => void onOther.push(message.payload ?? ''));
    await second.query(`LISTEN ${other}`);
    // A spy (the real query runs): which statement each batch went out with,
    // on the pool's clients (the notifier holds one while it sends).
    const query = jest.spyOn(pg.Client.prototype, 'query');
    try {
      const notifier = connectedNotifier(pool, 100);
      // Packed: pure ASCII, empty payloads included.
      const ascii = ['e:{"a":"x,y"}', '', 'e1,-2', '', 'e:"\\u00e9"'];
      // JSON arrays: a payload with the separator; one beyond ASCII (its
      // UTF-8 longer than its length, also as the batch's last payload).
      const separator = ['x', 'a\u001eb', 'y'];
      const wide = ['p', 'é€😀', 'q', 'ünïcödé'];
      for (const payloads of [ascii, separator, wide]) {
        got.length = 0;
        const outcomes = await Promise.all(payloads.map(p => enqueue(notifier, channel, p)));
        expect(outcomes).toEqual(payloads.map(() => true));
        await waitFor(() => got.length === payloads.length);
        expect(got).toEqual(payloads);
      }
      // Two topics in one batch, each in its order; packed, then as JSON arrays.
      for (const last of ['4', 'ö']) {
        got.length = 0;
        onOther.length = 0;
        const mixed = await Promise.all([
          enqueue(notifier, channel, '1'),
          enqueue(notifier, other, '2'),
          enqueue(notifier, channel, '3'),
          enqueue(notifier, other, last),
        ]);
        expect(mixed).toEqual([true, true, true, true]);
        await waitFor(() => got.length === 2 && onOther.length === 2);
        expect(got).toEqual(['1', '3']);
        expect(onOther).toEqual(['2', last]);
      }
      // Each form was used: packed for ASCII (the first list in two batches,
      // cut before its repeated ''), JSON arrays otherwise.
      const statements = query.mock.calls
        .map(call => statementOf(call).text)
        .filter(s => s.includes('pg_notify'));
      expect(statements.filter(s => s.includes('string_to_array'))).toHaveLength(3);
      expect(statements.filter(s => s.includes('json_array_elements_text'))).toHaveLength(3);
      expect(notifier.counters).toMatchObject({ notifyFailCount: 0, notifyRetryCount: 0 });
      await notifier.stop();
    } finally {
      query.mockRestore();
      await second.end();
    }
  });
  it('streams a packed batch into pg_notify: no copy of 600 payloads of 4 KB in a temporary file', async () => {
    // A set-returning function in FROM is a Function Scan, which copies
    // every element into a tuplestore and, beyond work_mem (4 MB by default),
    // writes it to a temporary file and reads it back (issue 24: a batch of
    // about 500 payloads of 4 KB did). In the select list they stream.
    // (The JSON array forms, for payloads that cannot be packed, still fill
    // one: json_array_elements_text does wherever it is called.)
    got.length = 0;
    const payloads = Array.from(
      { length: 600 },
      (_, i) => `e:{"n":${i},"s":"${'x'.repeat(4200)}"}`,
    );
    const packed = Buffer.from(payloads.join(NOTIFY_SEPARATOR), 'latin1');
    const topics = payloads.map(() => channel);
    const statements: [string, unknown[]][] = [
      [SQL_NOTIFY_PACKED_ONE_TOPIC, [channel, packed]],
      [SQL_NOTIFY_PACKED, [topics.join(NOTIFY_SEPARATOR), packed]],
    ];
    const client = await pool.connect();
    try {
      await client.query("SET work_mem = '4MB'");
      for (const [text, values] of statements) {
        // Rolled back: nothing is delivered.
        await client.query('BEGIN');
        const { rows } = await client.query<{ 'QUERY PLAN': string }>(
          `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) ${text}`,
          values,
        );
        await client.query('ROLLBACK');
        const plan = rows.map(row => row['QUERY PLAN']).join('\n');
        expect(plan).toContain('rows=600');
        expect(plan).not.toMatch(/temp (read|written)/);
      }
    } finally {
      await client.query('RESET work_mem');
      client.release();
    }
    expect(got).toEqual([]);
  });

  /** Sends `payloads` (distinct) through a notifier of 1000 per statement; @returns each statement's packed parameter. */
  async function packedSizes(payloads: string[]): Promise<{ sizes: number[]; names: unknown[] }> {
    const query = jest.spyOn(pg.Client.prototype, 'query');
    try {
      const notifier = connectedNotifier(pool, 1000);
      const outcomes = await Promise.all(
        payloads.map(
          payload =>
            new Promise<boolean | Error>(resolve =>
              notifier.enqueue({
                topic: channel,
                payload,
                distinct: true,
                settle: (sent, error) => resolve(error ?? sent),
              }),
            ),
        ),
      );
      expect(outcomes).toEqual(payloads.map(() => true));
      await waitFor(() => got.length === payloads.length);
      expect(got).toEqual(payloads);
      await notifier.stop();
      const notifies = query.mock.calls
        .map(call => statementOf(call))
        .filter(statement => statement.text.includes('pg_notify'));
      return {
        sizes: notifies.map(statement => (statement.values[1] as Buffer).length),
        names: notifies.map(statement => statement.name),
      };
    } finally {
      query.mockRestore();
    }
  }

  it('cuts batches of large payloads at about LARGE_NOTIFY_BATCH_BYTES: 600 of 4 KB go out 11 to a statement, in order, prepared', async () => {
    got.length = 0;
    const filler = 'x'.repeat(4096);
    const payloads = Array.from({ length: 600 }, (_, i) => `${i}:${filler}`);
    const { sizes, names } = await packedSizes(payloads);
    // Each statement's packed parameter: at most LARGE_NOTIFY_BATCH_BYTES and a payload.
    expect(sizes).toHaveLength(Math.ceil(600 / 11));
    for (const size of sizes) expect(size).toBeLessThanOrEqual(LARGE_NOTIFY_BATCH_BYTES + 4200);
    // The packed statement is prepared once per connection, then only bound.
    expect(new Set(names)).toEqual(new Set(['herald_notify_packed_one_topic']));
  });

  it('keeps small payloads together up to batchSize: 1000 of 300 B in one statement (NOTIFY_BATCH_BYTES far off)', async () => {
    got.length = 0;
    const filler = 'y'.repeat(296);
    const payloads = Array.from({ length: 1000 }, (_, i) => `${i}:${filler}`.slice(0, 300));
    const { sizes } = await packedSizes(payloads);
    expect(sizes).toHaveLength(1);
    expect(sizes[0]).toBeLessThanOrEqual(NOTIFY_BATCH_BYTES);
  });

  it('submits the next batch before the settled ones run, in order, one batch in flight', async () => {
    got.length = 0;
    const query = jest.spyOn(pg.Client.prototype, 'query');
    try {
      const notifier = connectedNotifier(pool, 2);
      const notifies = () =>
        query.mock.calls.filter(call => statementOf(call).text.includes('pg_notify'));
      // When the first batch's notifies settle, the second batch is on its way already.
      const submittedAtFirstSettle: number[] = [];
      const payloads = ['1', '2', '3', '4', '5'];
      const outcomes = await Promise.all(
        payloads.map(
          (payload, i) =>
            new Promise<boolean | Error>(resolve =>
              notifier.enqueue({
                topic: channel,
                payload,
                distinct: true,
                settle: (sent, error) => {
                  if (i === 0) submittedAtFirstSettle.push(notifies().length);
                  resolve(error ?? sent);
                },
              }),
            ),
        ),
      );
      expect(outcomes).toEqual(payloads.map(() => true));
      expect(submittedAtFirstSettle).toEqual([2]);
      expect(notifies()).toHaveLength(3);
      await waitFor(() => got.length === payloads.length);
      expect(got).toEqual(payloads);
      await notifier.stop();
    } finally {
      query.mockRestore();
    }
  });

  it('takes turns with others waiting for a connection of a small pool', async () => {
    const small = new pg.Pool({ connectionString: PG_URL, max: 1 });
    got.length = 0;
    try {
      const notifier = connectedNotifier(small, 10);
      let settled = 0;
      let settledWhenAnswered = -1;
      let asked: Promise<unknown> | undefined;
      const all = Array.from(
        { length: 200 },
        (_, i) =>
          new Promise<boolean | Error>(resolve =>
            notifier.enqueue({
              topic: channel,
              payload: `t${i}`,
              distinct: true,
              settle: (sent, error) => {
                settled++;
                // Asked while the notifier holds the pool's only client.
                if (i === 0)
                  asked = small.query('SELECT 1').then(() => (settledWhenAnswered = settled));
                resolve(error ?? sent);
              },
            }),
          ),
      );
      expect(new Set(await Promise.all(all))).toEqual(new Set([true]));
      await asked;
      expect(settledWhenAnswered).toBeGreaterThan(0);
      expect(settledWhenAnswered).toBeLessThan(200);
      // All of them arrive (in order) before the next test listens on the channel.
      await waitFor(() => got.length === 200);
      expect(got).toEqual(Array.from({ length: 200 }, (_, i) => `t${i}`));
      await notifier.stop();
    } finally {
      await small.end();
    }
  });
  it('a connection that lost the prepared statement (a pooler, DEALLOCATE): the batch goes out one by one, nothing lost', async () => {
    const one = new pg.Pool({ connectionString: PG_URL, max: 1 });
    got.length = 0;
    try {
      // node-postgres believes the statement prepared on this connection, so
      // it only binds it: the server answers "prepared statement does not exist".
      const client = await one.connect();
      (
        client as unknown as { connection: { parsedStatements: Record<string, string> } }
      ).connection.parsedStatements.herald_notify_packed_one_topic = SQL_NOTIFY_PACKED_ONE_TOPIC;
      client.release();
      const notifier = connectedNotifier(one, 100);
      const payloads = ['p1', 'p2', 'p3'];
      const outcomes = await Promise.all(payloads.map(p => enqueue(notifier, channel, p)));
      expect(outcomes).toEqual([true, true, true]);
      await waitFor(() => got.length === payloads.length);
      expect(got).toEqual(payloads);
      expect(notifier.counters).toMatchObject({ notifyRetryCount: 1, notifyFailCount: 0 });
      // It prepares no more: the next batch goes out whole, unnamed.
      got.length = 0;
      const more = ['p4', 'p5'];
      expect(await Promise.all(more.map(p => enqueue(notifier, channel, p)))).toEqual([true, true]);
      await waitFor(() => got.length === more.length);
      expect(got).toEqual(more);
      expect(notifier.counters).toMatchObject({ notifyRetryCount: 1, notifyFailCount: 0 });
      await notifier.stop();
    } finally {
      await one.end();
    }
  });

  it('answers each batch statement with one row, the count, its notifies in order', async () => {
    const payloads = ['p1', 'p2', 'p3'];
    const topics = payloads.map(() => channel);
    const statements: [string, unknown[]][] = [
      [SQL_NOTIFY_PACKED_ONE_TOPIC, [channel, Buffer.from(payloads.join(NOTIFY_SEPARATOR))]],
      [SQL_NOTIFY_PACKED, [topics.join(NOTIFY_SEPARATOR), payloads.join(NOTIFY_SEPARATOR)]],
      [SQL_NOTIFY_MANY_ONE_TOPIC, [channel, JSON.stringify(payloads)]],
      [SQL_NOTIFY_MANY, [JSON.stringify(topics), JSON.stringify(payloads)]],
    ];
    for (const [text, values] of statements) {
      got.length = 0;
      const result = await pool.query(text, values);
      expect(result.rows).toEqual([{ count: '3' }]);
      await waitFor(() => got.length === 3);
      expect(got).toEqual(payloads);
    }
  });
});

import pg from 'pg';
import { silentLogger } from '../../../../lib/index.js';
import { PgNotifier } from '../../../../lib/transports/pg/pg.notifier.js';
import { PG_URL, uniqueName } from '../../../helpers/services.js';
import { waitFor } from '../../../helpers/wait-for.js';

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
});

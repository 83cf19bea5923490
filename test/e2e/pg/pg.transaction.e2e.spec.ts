import pg from 'pg';
import {
  EventBus,
  InvalidEventError,
  LocalTransport,
  silentLogger,
  type HeraldEvent,
} from '../../../lib/index.js';
import { PgTransport } from '../../../lib/pg/index.js';
import { PG_URL, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';

/**
 * Issue 18 point 4: `post(..., { tx })` sends the event inside the poster's
 * transaction. Each case ends with a marker posted outside any transaction
 * after the transaction ended: PostgreSQL delivers notifications in commit
 * order, so once the marker is in, a committed event is in too, and a
 * rolled-back one never comes.
 */
describe('PgTransport: post inside the poster’s transaction', () => {
  let admin: pg.Pool;
  let bus: EventBus;
  let got: HeraldEvent[];
  let off: () => boolean;

  beforeAll(async () => {
    admin = new pg.Pool({ connectionString: PG_URL, max: 3 });
    const transport = new PgTransport({
      connectionString: PG_URL,
      channel: uniqueName('tx').toLowerCase(),
    });
    bus = new EventBus({ logger: silentLogger, transport });
    await bus.connect();
    bus.start();
    await bus.waitUntilReady();
  });

  beforeEach(() => {
    got = [];
    off = bus.register((_data, event) => void got.push(event));
  });

  afterEach(() => off());

  afterAll(async () => {
    await bus.close({ timeoutMs: 2000 });
    await admin.end();
  });

  const marker = async (): Promise<void> => {
    const id = uniqueName('m');
    await bus.post('marker', 'm', id);
    await waitFor(() => got.some(event => event.data === id));
  };

  const inTransaction = async (
    body: (client: pg.PoolClient) => Promise<void>,
    end: 'COMMIT' | 'ROLLBACK',
  ): Promise<void> => {
    const client = await admin.connect();
    try {
      await client.query('BEGIN');
      await body(client);
      await client.query(end);
    } finally {
      client.release();
    }
  };

  it('commit delivers, at commit and not before', async () => {
    await inTransaction(async client => {
      await bus.post('orders', 'created', { n: 1 }, { tx: client });
      await marker();
      expect(got.filter(event => event.source === 'orders')).toHaveLength(0);
    }, 'COMMIT');
    await waitFor(() => got.some(event => event.source === 'orders'));
    expect(got.find(event => event.source === 'orders')?.data).toEqual({ n: 1 });
  });

  it('rollback delivers nothing', async () => {
    await inTransaction(async client => {
      await bus.post('orders', 'rolled', 1, { tx: client });
    }, 'ROLLBACK');
    await marker();
    expect(got.filter(event => event.source === 'orders')).toHaveLength(0);
  });

  it('a failed statement after the post delivers nothing (COMMIT of an aborted transaction rolls back)', async () => {
    await inTransaction(async client => {
      await bus.post('orders', 'failed', 1, { tx: client });
      await expect(client.query('SELECT 1/0')).rejects.toThrow(/division by zero/);
    }, 'COMMIT');
    await marker();
    expect(got.filter(event => event.source === 'orders')).toHaveLength(0);
  });

  it('a post in an aborted transaction is refused with the server’s error', async () => {
    await inTransaction(async client => {
      await expect(client.query('SELECT 1/0')).rejects.toThrow();
      await expect(bus.post('orders', 'late', 1, { tx: client })).rejects.toThrow(
        /current transaction is aborted/,
      );
    }, 'ROLLBACK');
  });

  it('refuses tx on a transport that cannot post in a transaction, and a tx without query()', async () => {
    const local = new EventBus({ logger: silentLogger, transport: new LocalTransport() });
    await local.connect();
    try {
      await expect(
        local.post('a', 'b', 1, { tx: { query: () => Promise.resolve() } }),
      ).rejects.toThrow(
        new InvalidEventError('tx: the local transport cannot post in a transaction'),
      );
    } finally {
      await local.close();
    }
    await expect(bus.post('a', 'b', 1, { tx: {} as never })).rejects.toThrow(InvalidEventError);
  });
});

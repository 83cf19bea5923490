import pg from 'pg';
import { PgTransport } from '../../lib/pg/index.js';
import { PG_URL } from '../helpers/services.js';
import { transportConformance } from '../../lib/testing/index.js';

transportConformance({
  name: 'pg',
  features: new PgTransport({ connectionString: PG_URL }).features,
  // Instances of one scope share the channel named after it.
  createTransport: scope =>
    new PgTransport({ connectionString: PG_URL, channel: scope, reconnectMs: 100, poolSize: 2 }),
});

// Durable mode (issue 19): the same suite over the outbox (at-least-once,
// redelivery of nacked events), in the default tables; each scope's rows
// are removed after it.
const DURABLE_TABLE = 'herald_outbox';

transportConformance({
  name: 'pg durable',
  features: new PgTransport({ connectionString: PG_URL, durable: true }).features,
  createTransport: scope =>
    new PgTransport({
      connectionString: PG_URL,
      channel: scope,
      reconnectMs: 100,
      poolSize: 3,
      durable: { table: DURABLE_TABLE, pollMs: 200, retryDelayMs: 100, cleanupIntervalMs: 0 },
    }),
  async teardown(scope) {
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    try {
      for (const suffix of ['', '_consumers', '_dead'])
        await client.query(`DELETE FROM ${DURABLE_TABLE}${suffix} WHERE channel = $1`, [scope]);
    } finally {
      await client.end();
    }
  },
});

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

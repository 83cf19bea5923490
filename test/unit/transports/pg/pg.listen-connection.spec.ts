import pg from 'pg';
import type { Notification } from 'pg';
import { silentLogger } from '../../../../lib/index.js';
import { PgListenConnection } from '../../../../lib/transports/pg/pg.listen-connection.js';
import { PG_URL, uniqueName } from '../../../helpers/services.js';
import { waitFor } from '../../../helpers/wait-for.js';

describe('PgListenConnection on a real PostgreSQL', () => {
  it('LISTENs the wanted topics on a client of its own, follows sync(), hears notifications', async () => {
    const pool = new pg.Pool({ connectionString: PG_URL, max: 1 });
    const a = uniqueName('la').toLowerCase();
    const b = uniqueName('lb').toLowerCase();
    const wanted = [a];
    const heard: Notification[] = [];
    const events: string[] = [];
    let stopping = false;
    const listen = new PgListenConnection(
      {
        pool,
        name: 'unit',
        applicationName: uniqueName('listen'),
        reconnectMs: 50,
        heartbeatMs: 1000,
        heartbeatTimeoutMs: 1000,
        logger: silentLogger,
      },
      {
        wantedTopics: () => wanted,
        isStopping: () => stopping,
        onNotification: message => void heard.push(message),
        onConnected: first => void events.push(first ? 'first' : 'again'),
        onLost: reason => void events.push(`lost ${reason}`),
        onListened: () => void events.push('listened'),
      },
    );
    try {
      listen.open();
      await waitFor(() => events.includes('first'));
      expect(pool.totalCount).toBe(0);
      expect([...listen.listening]).toEqual([a]);
      wanted.push(b);
      wanted.shift();
      await listen.sync();
      expect([...listen.listening]).toEqual([b]);
      expect(events).toContain('listened');
      await pool.query('SELECT pg_notify($1, $2)', [b, 'e']);
      await waitFor(() => heard.length === 1);
      expect(heard[0].channel).toBe(b);
      expect(listen.counters).toMatchObject({ connectCount: 1, listenCount: 2, unlistenCount: 1 });
    } finally {
      stopping = true;
      listen.close();
      await pool.end();
    }
  });
});

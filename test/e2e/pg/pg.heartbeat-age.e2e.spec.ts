import { PgHub } from '../../../lib/pg/index.js';
import { transportHealth } from '../../../lib/terminus/herald-health.rules.js';
import { memoryLogger } from '../../helpers/memory-logger.js';
import { hostPort, PG_URL } from '../../helpers/services.js';
import { TcpProxy } from '../../helpers/tcp-proxy.js';
import { waitFor } from '../../helpers/wait-for.js';

/**
 * Issue 25: `heartbeatAgeMs` in the hub's stats (and so in the pg
 * transport's), the figure `nest-herald/terminus` checks against
 * `maxHeartbeatAgeMs`: small while the server answers, growing while the
 * LISTEN connection is black-holed.
 */
describe('pg heartbeatAgeMs (issue 25)', () => {
  let proxy: TcpProxy;
  let hub: PgHub | undefined;

  afterEach(async () => {
    await hub?.stop({ wait: false });
    await proxy?.close();
  });

  it('stays below heartbeatMs + a round trip while answered, grows while the peer is silent, and the health rule reads it', async () => {
    const { host, port } = hostPort(PG_URL);
    proxy = new TcpProxy(host, port);
    await proxy.start();
    hub = new PgHub({
      connectionString: proxy.url(PG_URL),
      heartbeatMs: 50,
      heartbeatTimeoutMs: 60_000, // never declared lost here: the age alone tells
      logger: memoryLogger(),
    });
    await hub.start();
    // Answered heartbeats keep it small (bounded by the interval, not by a clock assertion).
    const fresh = await waitFor(() => {
      const age = hub!.stats().heartbeatAgeMs;
      return age < 1000 ? { age } : undefined;
    });
    expect(fresh.age).toBeLessThan(1000);
    expect(
      transportHealth(
        'pg',
        { state: 'connected' },
        { ...hub.stats() },
        { maxHeartbeatAgeMs: 5000, maxLag: 10 },
      ).up,
    ).toBe(true);

    proxy.blackhole();
    await waitFor(() => hub!.stats().heartbeatAgeMs > 1500, { timeoutMs: 30_000 });
    expect(hub.state).toBe('connected');
    const verdict = transportHealth(
      'pg',
      { state: 'connected' },
      { ...hub.stats() },
      { maxHeartbeatAgeMs: 1000, maxLag: 10 },
    );
    expect(verdict.up).toBe(false);
    expect(verdict.data.reason).toMatch(/^no heartbeat answer for \d+ ms \(limit 1000 ms\)$/);
  });
});

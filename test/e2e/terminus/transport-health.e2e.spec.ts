import path from 'node:path';
import type { INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TerminusModule } from '@nestjs/terminus';
import { EventsModule, silentLogger, type EventsModuleForRootOptions } from '../../../lib/index.js';
import { HeraldHealthIndicator } from '../../../lib/terminus/index.js';
import { PG_URL, hostPort, uniqueName } from '../../helpers/services.js';
import { TcpProxy } from '../../helpers/tcp-proxy.js';
import { tempDir } from '../../helpers/temp-dir.js';
import { waitFor } from '../../helpers/wait-for.js';

const opened: { close(): Promise<unknown> | unknown }[] = [];

afterEach(async () => {
  for (const item of opened.splice(0).reverse()) await item.close();
});

async function app(options: EventsModuleForRootOptions): Promise<HeraldHealthIndicator> {
  const moduleRef = await Test.createTestingModule({
    imports: [EventsModule.forRoot({ logger: silentLogger, ...options }), TerminusModule],
    providers: [HeraldHealthIndicator],
  }).compile();
  const context: INestApplicationContext = await moduleRef.init();
  opened.push(context);
  return context.get(HeraldHealthIndicator);
}

describe('HeraldHealthIndicator.isHealthy on the pg and ipc transports', () => {
  it('pg: down with the reason while the LISTEN connection is cut (tcp-proxy), up again once restored', async () => {
    const { host, port } = hostPort(PG_URL);
    const proxy = new TcpProxy(host, port);
    await proxy.start();
    opened.push({ close: () => proxy.close() });
    const indicator = await app({
      transport: 'pg',
      pg: {
        connectionString: proxy.url(PG_URL),
        channel: uniqueName('health').toLowerCase(),
        reconnectMs: 100,
        applicationName: uniqueName('health'),
      },
    });
    await waitFor(() => indicator.isHealthy('events').events.status === 'up', {
      timeoutMs: 10_000,
    });
    expect(indicator.isHealthy('events').events).toMatchObject({
      status: 'up',
      transport: 'pg',
      state: 'connected',
      connectCount: 1,
    });

    proxy.cut();
    const down = await waitFor(
      () => {
        const result = indicator.isHealthy('events').events;
        return result.status === 'down' ? result : undefined;
      },
      { timeoutMs: 10_000 },
    );
    expect(down).toMatchObject({ transport: 'pg', reason: expect.any(String) });
    expect(down.state).not.toBe('connected');
    // The hub's own cause (the connection lost), not the indicator's fallback text.
    expect(down.reason).not.toMatch(/^the pg transport is/);

    proxy.restore();
    await waitFor(() => indicator.isHealthy('events').events.status === 'up', {
      timeoutMs: 15_000,
    });
  });

  it("ipc: up with this process's role (it hosts the broker)", async () => {
    const dir = tempDir('herald-health-');
    const indicator = await app({
      transport: 'ipc',
      ipc: { socketPath: path.join(dir, 'events.sock') },
    });
    await waitFor(() => indicator.isHealthy('events').events.status === 'up', {
      timeoutMs: 10_000,
    });
    expect(indicator.isHealthy('events').events).toMatchObject({
      transport: 'ipc',
      state: 'connected',
      role: 'broker',
    });
  });

  it('refuses a bad option with InvalidOptionsError, the app goes on', async () => {
    const indicator = await app({ transport: 'local' });
    expect(() => indicator.isHealthy('events', { maxLag: -1 })).toThrow(
      /HeraldHealthIndicator: maxLag must be a finite number >= 0 \(got -1, a number\)/,
    );
    expect(indicator.isHealthy('events').events).toMatchObject({
      status: 'up',
      transport: 'local',
    });
  });
});

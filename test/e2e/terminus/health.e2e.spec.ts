import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { HealthSampleModule } from '../../../sample/health/app.module.js';
import { MiniHttpAdapter } from '../../../sample/health/mini-http.adapter.js';
import { PrivateRedis } from '../../helpers/private-redis.js';
import { uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';

/** GET over real HTTP: the status code and the parsed body. */
async function get(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('sample/health: /health over real HTTP with terminus', () => {
  const redis = new PrivateRedis();
  let app: INestApplication | undefined;

  beforeAll(async () => {
    await redis.start();
  });

  afterAll(async () => {
    await app?.close();
    await redis.stop();
  });

  it('is up while Redis answers, down with the reason once it is stopped, up again after it restarts', async () => {
    const adapter = new MiniHttpAdapter();
    app = await NestFactory.create(
      HealthSampleModule.forRoot({ redisUrl: redis.url, stream: uniqueName('health') }),
      adapter,
      { logger: false },
    );
    await app.listen(0);
    const url = `http://127.0.0.1:${adapter.port}/health`;

    const up = await waitFor(
      async () => {
        const reply = await get(url);
        return reply.status === 200 ? reply : undefined;
      },
      { timeoutMs: 10_000 },
    );
    expect(up.body).toMatchObject({
      status: 'ok',
      info: { events: { status: 'up', transport: 'redis', state: 'connected' } },
    });

    await redis.kill();
    const down = await waitFor(
      async () => {
        const reply = await get(url);
        return reply.status === 503 ? reply : undefined;
      },
      { timeoutMs: 10_000 },
    );
    expect(down.body).toMatchObject({
      status: 'error',
      error: { events: { status: 'down', transport: 'redis' } },
    });
    const events = (down.body.error as Record<string, { state: string; reason: string }>).events;
    expect(events.state).not.toBe('connected');
    expect(typeof events.reason).toBe('string');
    expect(events.reason.length).toBeGreaterThan(0);

    await redis.start();
    await waitFor(async () => (await get(url)).status === 200, { timeoutMs: 20_000 });
  });
});

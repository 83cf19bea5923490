// An app whose /health says whether its events transport is up.
//   node --import ./scripts/register-ts.mjs sample/health/main.ts
// REDIS_URL defaults to redis://127.0.0.1:6379, PORT to 3000. Stop Redis
// (or cut the connection) and GET /health answers 503 with the reason.
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { HealthSampleModule } from './app.module.js';
import { MiniHttpAdapter } from './mini-http.adapter.js';

async function main(): Promise<void> {
  const adapter = new MiniHttpAdapter();
  const app = await NestFactory.create(
    HealthSampleModule.forRoot({
      redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      stream: process.env.HEALTH_STREAM ?? 'health-sample:events',
    }),
    adapter,
  );
  app.enableShutdownHooks();
  await app.listen(Number(process.env.PORT ?? 3000));
  console.log(`GET http://127.0.0.1:${adapter.port}/health`);
}

main().catch(error => {
  console.error(error);
  process.exit(1);
});

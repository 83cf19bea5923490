// The consumer: a Nest microservice over Redis Streams.
//   node --import ./scripts/register-ts.mjs sample/redis-microservice/consumer.main.ts
// Run several: each event goes to one of them (one consumer group), each
// request is answered once. REDIS_URL defaults to redis://127.0.0.1:6379.
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { RedisStreamsServer } from '../../lib/redis/microservice/index.js';
import { ConsumerModule } from './consumer.module.js';

async function main(): Promise<void> {
  const app = await NestFactory.createMicroservice(ConsumerModule, {
    strategy: new RedisStreamsServer({
      url: process.env.REDIS_URL,
      group: 'orders-service',
      // fail-fast: listen() rejects if Redis is not reachable within 10 s.
      startup: 'fail-fast',
    }),
  });
  app.enableShutdownHooks();
  await app.listen();
}

main().catch(error => {
  console.error(error);
  process.exit(1);
});

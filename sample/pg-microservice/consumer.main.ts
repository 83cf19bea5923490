// The consumer: a Nest microservice over PostgreSQL LISTEN/NOTIFY.
//   node --import ./scripts/register-ts.mjs sample/pg-microservice/consumer.main.ts
// Every running consumer receives each event (NOTIFY reaches all listeners);
// each request is answered by one of them (a claim row decides).
// PG_URL defaults to postgres://postgres@127.0.0.1:5432/test.
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { PgNotifyServer } from '../../lib/pg/microservice/index.js';
import { ConsumerModule } from './consumer.module.js';

async function main(): Promise<void> {
  const server = new PgNotifyServer({
    connectionString: process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    // degraded: boot even while the database is away; status tells where it is.
    startup: 'degraded',
  });
  const logger = new Logger('consumer');
  server.status$.subscribe(({ state, reason }) =>
    logger.log(`status: ${state}${reason ? ` (${reason})` : ''}`),
  );
  // NOTIFY is not redelivered: after a reconnect, resync what matters from the tables.
  server.on('reconnect', () => logger.warn('reconnected: notifications sent meanwhile were lost'));
  const app = await NestFactory.createMicroservice(ConsumerModule, { strategy: server });
  app.enableShutdownHooks();
  await app.listen();
}

main().catch(error => {
  console.error(error);
  process.exit(1);
});

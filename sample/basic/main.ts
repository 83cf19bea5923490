// npm start: a Nest app on the in-process transport, no server needed.
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPublisher } from '../../lib/index.js';
import { AppModule } from './app.module.js';
import { AuditService } from './audit.service.js';
import { BillingService } from './billing.service.js';
import { OrdersController } from './orders.controller.js';
import { OrdersService } from './orders.service.js';

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise(resolve => setTimeout(resolve, 5));
}

async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(AppModule);
  // SIGTERM/SIGINT run app.close(): intake stops, running handlers finish.
  app.enableShutdownHooks();
  const logger = new Logger('sample');
  const events = app.get(EventPublisher);
  await events.waitUntilReady();

  const orders = app.get(OrdersService);
  const billing = app.get(BillingService);
  await orders.placeOrder(4_200);
  await orders.placeOrder(250_000); // declined: the filter handles it
  await orders.nightlyReport();
  const cache = new Map([['orders', 2]]);
  orders.cacheWarmed(cache);

  await until(() => AuditService.entries.length === 1 && billing.warmed.length === 1);
  await until(() => events.stats().queued === 0 && events.stats().inFlight === 0);

  const stats = events.stats();
  logger.log(
    `controller saw ${app.get(OrdersController).seen.join(',')}; charged ${billing.charged.join(',')}; ` +
      `nightly report ran ${billing.reports}x; postLocal kept the very Map: ${billing.warmed[0] === cache}`,
  );
  logger.log(
    `stats: posted ${stats.posted}, postedLocal ${stats.postedLocal}, handled ${stats.handled}, failed ${stats.failed}, ` +
      `acked ${stats.acked}, nacked ${stats.nacked}`,
  );
  await app.close();
  await events
    .post('orders', 'created', {})
    .catch((error: Error) => logger.log(`after close: ${error.name}`));
}

main().then(
  () => process.exit(0),
  error => {
    console.error(error);
    process.exit(1);
  },
);

// The producer: an application with a PgNotifyClient from ClientsModule.
//   node --import ./scripts/register-ts.mjs sample/pg-microservice/producer.main.ts
// Start consumer.main.ts first: NOTIFY reaches only those listening now.
import 'reflect-metadata';
import { Inject, Injectable, Logger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientsModule, type ClientProxy } from '@nestjs/microservices';
import { firstValueFrom, lastValueFrom } from 'rxjs';
import { HeraldRecord, PgNotifyClient } from '../../lib/pg/microservice/index.js';

const ORDERS = 'ORDERS';
const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

@Injectable()
class OrdersGateway {
  constructor(@Inject(ORDERS) private readonly client: ClientProxy) {}

  async created(id: number, amount: number): Promise<void> {
    // Completes once PostgreSQL took the NOTIFY; metadata rides in the packet.
    const record = new HeraldRecord(
      { id, amount },
      { metadata: { traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01` } },
    );
    await lastValueFrom(this.client.emit('orders_created', record), { defaultValue: undefined });
  }

  total(amounts: number[]): Promise<number> {
    return firstValueFrom(
      this.client.send<number>(
        { cmd: 'orders.total' },
        new HeraldRecord(amounts, { timeoutMs: 5000 }),
      ),
    );
  }
}

@Module({
  imports: [
    ClientsModule.register([
      { name: ORDERS, customClass: PgNotifyClient, options: { connectionString: PG_URL } },
    ]),
  ],
  providers: [OrdersGateway],
})
class ProducerModule {}

async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(ProducerModule);
  app.enableShutdownHooks();
  const logger = new Logger('producer');
  const orders = app.get(OrdersGateway);
  for (let id = 1; id <= 3; id++) await orders.created(id, id * 100);
  logger.log(`total of 100 + 200 + 300 = ${await orders.total([100, 200, 300])}`);
  await app.close(); // closes the client: its reply channel is UNLISTENed
}

main().catch(error => {
  console.error(error);
  process.exit(1);
});

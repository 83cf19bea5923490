// The producer: an application with a RedisStreamsClient from ClientsModule.
//   node --import ./scripts/register-ts.mjs sample/redis-microservice/producer.main.ts
// Start consumer.main.ts first (its consumer group must exist to receive).
import 'reflect-metadata';
import { Inject, Injectable, Logger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientsModule, type ClientProxy, type ReadPacket } from '@nestjs/microservices';
import { firstValueFrom, lastValueFrom } from 'rxjs';
import { HeraldRecord, RedisStreamsClient } from '../../lib/redis/microservice/index.js';

const ORDERS = 'ORDERS';

@Injectable()
class OrdersGateway {
  constructor(@Inject(ORDERS) private readonly client: ClientProxy) {
    // Metadata travels beside the data; the consumer reads it from its context.
    client.setOnDispatchHook((packet: ReadPacket) => {
      packet.metadata = { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' };
    });
  }

  async created(id: number, amount: number): Promise<void> {
    // Completes once the entry is written to the stream.
    await lastValueFrom(this.client.emit('orders.created', { id, amount }), {
      defaultValue: undefined,
    });
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
      { name: ORDERS, customClass: RedisStreamsClient, options: { url: process.env.REDIS_URL } },
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
  await app.close(); // closes the client: its reply stream is deleted
}

main().catch(error => {
  console.error(error);
  process.exit(1);
});

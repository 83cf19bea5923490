import { Controller, Logger } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import type { PgNotifyContext } from '../../lib/pg/microservice/index.js';

/** The consumer's handlers: plain Nest pattern decorators, nothing transport-specific. */
@Controller()
export class OrdersController {
  private readonly logger = new Logger(OrdersController.name);

  // A string pattern is the channel: a trigger's pg_notify('orders_created', ...) lands here too.
  // `<string>` picks Nest 12's untyped overload, so the @Ctx() parameter can have its type.
  @EventPattern<string>('orders_created')
  onCreated(@Payload() order: unknown, @Ctx() context: PgNotifyContext): void {
    this.logger.log(
      `order ${JSON.stringify(order)} on ${context.getChannel()} key [${context.getKey().join(',')}] ` +
        `from backend ${context.getProcessId()}, trace ${context.getMetadata()?.traceparent ?? '-'}`,
    );
  }

  @MessagePattern({ cmd: 'orders.total' })
  total(@Payload() amounts: number[]): number {
    return amounts.reduce((sum, amount) => sum + amount, 0);
  }
}

import { Controller, Logger } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import type { RedisStreamsContext } from '../../lib/redis/microservice/index.js';

export interface OrderCreated {
  readonly id: number;
  readonly amount: number;
}

/** The consumer's handlers: plain Nest pattern decorators, nothing transport-specific. */
@Controller()
export class OrdersController {
  private readonly logger = new Logger(OrdersController.name);

  // `<string>` picks Nest 12's untyped overload, so the @Ctx() parameter can have its type.
  @EventPattern<string>('orders.created')
  onCreated(@Payload() order: OrderCreated, @Ctx() context: RedisStreamsContext): void {
    // Acknowledged after this returns; a throw would leave it pending for redelivery.
    this.logger.log(
      `order ${order.id} (${order.amount}) from ${context.getStream()} entry ${context.getMessageId()}, ` +
        `delivery ${context.getDeliveryCount()}, trace ${context.getMetadata()?.traceparent ?? '-'}`,
    );
  }

  @MessagePattern({ cmd: 'orders.total' })
  total(@Payload() amounts: number[]): number {
    return amounts.reduce((sum, amount) => sum + amount, 0);
  }
}

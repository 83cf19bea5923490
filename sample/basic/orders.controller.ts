import { Controller, Logger, UseInterceptors } from '@nestjs/common';
import { EventData, OnEvent } from '../../lib/index.js';
import type { OrderCreated } from './orders.service.js';
import { TimingInterceptor } from './timing.interceptor.js';

/** Controllers can handle events too; Nest enhancers apply as on routes. */
@Controller('orders')
export class OrdersController {
  private readonly logger = new Logger('OrdersController');
  readonly seen: number[] = [];

  @OnEvent('orders', 'created')
  @UseInterceptors(TimingInterceptor)
  onCreated(@EventData('orderId') orderId: number): void {
    this.seen.push(orderId);
    this.logger.log(`order ${orderId} created`);
  }

  @OnEvent('orders', 'created')
  onCreatedData(data: OrderCreated): void {
    this.logger.log(`order ${data.orderId} amount ${(data.amountCents / 100).toFixed(2)} EUR`);
  }
}

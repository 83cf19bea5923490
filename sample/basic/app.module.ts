import { Module } from '@nestjs/common';
import { EventsModule } from '../../lib/index.js';
import { AuditService } from './audit.service.js';
import { BillingService } from './billing.service.js';
import { OrdersController } from './orders.controller.js';
import { OrdersService } from './orders.service.js';

@Module({
  imports: [
    EventsModule.forRoot({
      transport: 'local',
      handlerTimeoutMs: 5_000,
      shutdownTimeoutMs: 5_000,
      onHandlerError: (error, context) =>
        console.error(`handler ${context.handler} failed on ${context.source}/${context.event}`),
    }),
  ],
  controllers: [OrdersController],
  providers: [OrdersService, BillingService, AuditService],
})
export class AppModule {}

import type { IncomingMessage, ServerResponse } from 'node:http';
import { Controller, Get, Injectable, Module, Req, Res } from '@nestjs/common';
import {
  HealthCheck,
  HealthCheckService,
  TerminusModule,
  type HealthCheckResult,
} from '@nestjs/terminus';
import { EventsModule, OnEvent } from '../../lib/index.js';
import { HeraldHealthIndicator } from '../../lib/terminus/index.js';
import { prometheus } from './telemetry.js';

/** GET /health: up while the ipc connection to the broker is. */
@Controller()
export class OpsController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly herald: HeraldHealthIndicator,
  ) {}

  @Get('health')
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([() => this.herald.isHealthy('events')]);
  }

  /** GET /metrics: the Prometheus text of this worker's meter provider. */
  @Get('metrics')
  metrics(@Req() request: IncomingMessage, @Res() response: ServerResponse): void {
    prometheus.getMetricsRequestHandler(request, response);
  }
}

@Injectable()
export class OrdersListener {
  handled = 0;

  @OnEvent('orders', 'created')
  onCreated(): void {
    this.handled++;
  }
}

@Module({
  imports: [EventsModule.forRoot({ transport: 'ipc' }), TerminusModule],
  controllers: [OpsController],
  providers: [HeraldHealthIndicator, OrdersListener],
})
export class ObservabilityModule {}

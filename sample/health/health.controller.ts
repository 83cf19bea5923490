import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, type HealthCheckResult } from '@nestjs/terminus';
import { HeraldHealthIndicator } from '../../lib/terminus/index.js';

/** GET /health: 200 while the events transport is connected, 503 with the reason otherwise. */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly herald: HeraldHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([() => this.herald.isHealthy('events', { maxLag: 1000 })]);
  }
}

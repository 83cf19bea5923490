import { Injectable, Logger, Module } from '@nestjs/common';
import { EventPublisher, EventsModule, OnEvent } from '../../lib/index.js';

/** What a worker tells the primary (over the cluster channel) for the summary. */
export interface WorkerReport {
  kind: 'saw-upstream-down' | 'reloaded';
  workerId: number;
  pid: number;
}

const workerId = Number(process.env.HERALD_WORKER_ID);
const report = (kind: WorkerReport['kind']): void =>
  void process.send?.({ kind, workerId, pid: process.pid } satisfies WorkerReport);

/** Runs in every worker; only worker 0 checks the upstream here. */
@Injectable()
export class HealthCheck {
  private readonly logger = new Logger(`worker ${workerId} pid ${process.pid}`);

  constructor(private readonly events: EventPublisher) {}

  @OnEvent('cluster', 'ready')
  async onClusterReady(data: { workers: number }): Promise<void> {
    if (workerId !== 0) return;
    this.logger.log(
      `all ${data.workers} workers connected; health check: db-primary:5432 does not answer`,
    );
    await this.events.post('health', 'upstream-down', { upstream: 'db-primary:5432' });
  }
}

/** Every worker drops its connections to a failed upstream and asks for one cache reload. */
@Injectable()
export class UpstreamListener {
  private readonly logger = new Logger(`worker ${workerId} pid ${process.pid}`);

  constructor(private readonly events: EventPublisher) {}

  @OnEvent('health', 'upstream-down')
  async onUpstreamDown(data: { upstream: string }): Promise<void> {
    this.logger.log(`upstream ${data.upstream} is down: draining its connections`);
    report('saw-upstream-down');
    // Every worker posts the same event with the same unique key: one of them reloads.
    await this.events.post(
      'cache',
      'refresh',
      { reason: `${data.upstream} down` },
      { unique: 'cache-refresh:products' },
    );
  }
}

@Injectable()
export class ProductCache {
  private readonly logger = new Logger(`worker ${workerId} pid ${process.pid}`);

  @OnEvent('cache', 'refresh')
  reload(data: { reason: string }): void {
    this.logger.log(`reloading the product cache (${data.reason}); the other workers skip it`);
    report('reloaded');
  }
}

@Module({
  // workerId, workerCount and the socket come from forkWorkers (HERALD_WORKER_ID, ...).
  imports: [EventsModule.forRoot({ transport: 'ipc' })],
  providers: [HealthCheck, UpstreamListener, ProductCache],
})
export class WorkerModule {}

import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import type { Subscription } from 'rxjs';
import type { EventBus } from '../bus/event-bus.js';
import { EVENT_BUS } from '../events.constants.js';
import { FfiRuntimes } from '../ffi/ffi-runtimes.service.js';
import type { TransportStatus } from '../interfaces/transport.interface.js';
import {
  resolveHeraldHealthOptions,
  resolveHeraldRuntimeHealthOptions,
  type HeraldHealthOptions,
  type HeraldRuntimeHealthOptions,
} from './herald-health.options.js';
import { runtimeHealth, transportHealth, type HealthVerdict } from './herald-health.rules.js';

/**
 * A health indicator for `@nestjs/terminus` 12: the events transport of
 * `EventsModule` ({@link isHealthy}) and the runtimes of `FfiModule`
 * ({@link isRuntimeHealthy}). Down states carry the reason.
 *
 * ```ts
 * @Get() @HealthCheck()
 * check() {
 *   return this.health.check([() => this.herald.isHealthy('events')]);
 * }
 * ```
 *
 * Add it to the providers of the module holding your health controller
 * (with `TerminusModule` imported). It finds the bus and the runtimes across
 * the app, so neither module needs to export anything to it.
 * @publicApi
 */
@Injectable()
export class HeraldHealthIndicator implements OnModuleDestroy {
  private status?: TransportStatus;
  private subscription?: Subscription;

  constructor(
    private readonly health: HealthIndicatorService,
    private readonly moduleRef: ModuleRef,
  ) {}

  /**
   * The events transport: up when connected, with the transport's name, its
   * `role` (ipc: `broker` or `worker`) and the figures its stats expose; down
   * with the state and its reason otherwise, or when a figure crosses its
   * threshold (redis group lag over `maxLag`, pg heartbeat older than
   * `maxHeartbeatAgeMs`). Throws `InvalidOptionsError` for bad options.
   */
  isHealthy<const Key extends string>(
    key: Key,
    options?: HeraldHealthOptions,
  ): HealthIndicatorResult<Key> {
    const resolved = resolveHeraldHealthOptions(options);
    const indicator = this.health.check(key);
    const bus = this.find<EventBus>(EVENT_BUS);
    if (!bus) return indicator.down({ reason: 'EventsModule is not in this application' });
    this.watch(bus);
    const verdict = transportHealth(
      bus.transport.name,
      this.status ?? { state: 'connecting' },
      bus.transport.stats(),
      resolved,
    );
    return this.report(indicator, verdict);
  }

  /**
   * The runtimes of `FfiModule` (all, or `names`): up when every one is
   * loaded and its queue below `maxQueueShare` of `maxQueue`; down naming
   * the runtime and why. Throws `InvalidOptionsError` for bad options.
   */
  isRuntimeHealthy<const Key extends string>(
    key: Key,
    options?: HeraldRuntimeHealthOptions,
  ): HealthIndicatorResult<Key> {
    const resolved = resolveHeraldRuntimeHealthOptions(options);
    const indicator = this.health.check(key);
    const runtimes = this.find<FfiRuntimes>(FfiRuntimes);
    if (!runtimes) return indicator.down({ reason: 'FfiModule is not in this application' });
    const verdict = runtimeHealth(
      (resolved.names ?? runtimes.names()).map(name => {
        try {
          return { name, stats: runtimes.get(name).stats() };
        } catch (error) {
          return { name, error: (error as Error).message };
        }
      }),
      resolved,
    );
    return this.report(indicator, verdict);
  }

  onModuleDestroy(): void {
    this.subscription?.unsubscribe();
  }

  private report<Key extends string>(
    indicator: ReturnType<HealthIndicatorService['check']>,
    verdict: HealthVerdict,
  ): HealthIndicatorResult<Key> {
    return (
      verdict.up ? indicator.up(verdict.data) : indicator.down(verdict.data)
    ) as HealthIndicatorResult<Key>;
  }

  /** status$ replays the current state: one subscription keeps it at hand. */
  private watch(bus: EventBus): void {
    if (this.subscription) return;
    this.subscription = bus.status$.subscribe(status => (this.status = status));
  }

  private find<T>(token: unknown): T | undefined {
    try {
      return this.moduleRef.get<T>(token as string, { strict: false });
    } catch {
      return undefined;
    }
  }
}

import type { NativeRuntimeStats } from '../ffi/native-runtime.js';
import type { TransportStatus } from '../interfaces/transport.interface.js';
import type {
  ResolvedHeraldHealthOptions,
  ResolvedHeraldRuntimeHealthOptions,
} from './herald-health.options.js';

/** What an indicator reports: up or down, with the data terminus shows. */
export interface HealthVerdict {
  readonly up: boolean;
  readonly data: Record<string, unknown>;
}

/**
 * Stats keys the transports expose for the health rules (a rule applies
 * where the transport reports its figure):
 * - `heartbeatAgeMs` (pg): ms since the LISTEN connection last answered its heartbeat;
 * - `subscriberLag` (redis, group mode): entries the group has not read yet.
 */
export const HEALTH_STATS = { heartbeatAgeMs: 'heartbeatAgeMs', lag: 'subscriberLag' } as const;

/** The rules for the events transport, apart from Nest so they can be tested alone. */
export function transportHealth(
  transport: string,
  status: TransportStatus,
  stats: Readonly<Record<string, number>>,
  options: ResolvedHeraldHealthOptions,
): HealthVerdict {
  const data: Record<string, unknown> = { transport, state: status.state };
  if (status.role !== undefined) data.role = status.role;
  if (status.state !== 'connected') {
    data.reason = status.reason ?? `the ${transport} transport is ${status.state}`;
    return { up: false, data };
  }
  const age = stats[HEALTH_STATS.heartbeatAgeMs];
  if (typeof age === 'number') {
    data.heartbeatAgeMs = age;
    if (age > options.maxHeartbeatAgeMs) {
      data.reason = `no heartbeat answer for ${age} ms (limit ${options.maxHeartbeatAgeMs} ms)`;
      return { up: false, data };
    }
  }
  const lag = stats[HEALTH_STATS.lag];
  if (typeof lag === 'number') {
    data.lag = lag;
    if (lag > options.maxLag) {
      data.reason = `consumer lag ${lag} exceeds ${options.maxLag}`;
      return { up: false, data };
    }
  }
  if (transport === 'pg') {
    for (const key of ['connectCount', 'disconnectCount', 'queued'] as const) {
      if (typeof stats[key] === 'number') data[key] = stats[key];
    }
  }
  return { up: true, data };
}

/** One runtime as the indicator sees it: its stats, or why they could not be read. */
export type RuntimeProbe =
  | { readonly name: string; readonly stats: NativeRuntimeStats }
  | { readonly name: string; readonly error: string };

/** The rules for FFI runtimes: every one loaded, its queue below the share of maxQueue. */
export function runtimeHealth(
  probes: readonly RuntimeProbe[],
  options: ResolvedHeraldRuntimeHealthOptions,
): HealthVerdict {
  const runtimes: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const probe of probes) {
    if ('error' in probe) {
      runtimes[probe.name] = { loaded: false };
      problems.push(`${probe.name}: ${probe.error}`);
      continue;
    }
    const { stats } = probe;
    runtimes[probe.name] = {
      loaded: !stats.unloaded,
      queued: stats.queued,
      inFlight: stats.inFlight,
      maxQueue: stats.maxQueue,
      refusedFull: stats.refusedFull,
    };
    if (stats.unloaded) problems.push(`${probe.name}: unloaded`);
    else if (stats.queued >= options.maxQueueShare * stats.maxQueue) {
      problems.push(
        `${probe.name}: queue ${stats.queued} of maxQueue ${stats.maxQueue} (limit ${Math.round(options.maxQueueShare * 100)}%)`,
      );
    }
  }
  if (problems.length > 0) return { up: false, data: { runtimes, reason: problems.join('; ') } };
  return { up: true, data: { runtimes } };
}

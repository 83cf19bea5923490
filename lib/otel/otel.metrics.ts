import type * as OtelApi from '@opentelemetry/api';
import type { EventSlot } from './otel.attributes.js';
import { HERALD_METRICS, STAT_KEYS } from './otel.names.js';

/** The instruments recorded on the hot path (the counters are observable, read from the slots). */
export interface HeraldInstruments {
  readonly handlerDuration: OtelApi.Histogram;
  readonly publishDuration: OtelApi.Histogram;
  /** Stops the observable callback (the instrumentation was replaced or removed). */
  readonly stop: () => void;
}

/** Something whose `stats()` the observable instruments read at each collection. */
export interface StatsSource {
  /** `bus` (an EventBus's stats, the transport's under `transport`) or `ffi` (a runtime's). */
  readonly kind: 'bus' | 'ffi';
  /** The transport or runtime name, the `transport` / `runtime` attribute. */
  readonly name: string;
  readonly read: () => object;
}

function numbers(value: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  if (value === null || typeof value !== 'object') return out;
  for (const [key, v] of Object.entries(value)) if (typeof v === 'number') out[key] = v;
  return out;
}

function first(stats: Record<string, number>, keys: readonly string[]): number | undefined {
  for (const key of keys) if (stats[key] !== undefined) return stats[key];
  return undefined;
}

const EVENT = '{event}';
const DURATION_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

type SlotCount = Exclude<keyof EventSlot, 'attributes'>;

/**
 * Creates the instruments on `meter`: the event counters and the gauges
 * observed from `slots` and `sources` at each collection, the histograms
 * recorded as events go.
 */
export function createInstruments(
  meter: OtelApi.Meter,
  sources: ReadonlySet<StatsSource>,
  slots: () => Iterable<EventSlot>,
): HeraldInstruments {
  const M = HERALD_METRICS;
  const counter = (name: string, description: string): OtelApi.ObservableCounter =>
    meter.createObservableCounter(name, { description, unit: EVENT });
  const histogram = (name: string, description: string): OtelApi.Histogram =>
    meter.createHistogram(name, {
      description,
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
  const counters: [SlotCount, OtelApi.ObservableCounter][] = [
    ['posted', counter(M.posted, 'Events posted (post() called)')],
    ['publishFailed', counter(M.publishFailed, 'Posts the transport refused or failed')],
    ['delivered', counter(M.delivered, 'Envelopes the transport handed to this process')],
    ['handled', counter(M.handled, 'Handler calls that succeeded')],
    ['failed', counter(M.failed, 'Handler calls that threw or rejected')],
    ['dropped', counter(M.dropped, 'Events dropped before their handlers ran')],
  ];
  const lost = meter.createObservableCounter(M.lost, {
    description: 'Events the transport counts as lost',
    unit: EVENT,
  });
  const deadLettered = meter.createObservableCounter(M.deadLettered, {
    description: 'Events moved to a dead-letter stream',
    unit: EVENT,
  });
  const gauge = (name: string, description: string): OtelApi.ObservableGauge =>
    meter.createObservableGauge(name, { description });
  const depth = gauge(M.queueDepth, 'Events waiting for dispatch');
  const highWater = gauge(M.queueHighWater, 'Most events ever waiting for dispatch');
  const inFlight = gauge(M.inFlight, 'Events being handled');
  const running = gauge(M.running, 'Handler calls still running');
  const transportStat = gauge(M.transportStat, "Each numeric figure of the transport's stats()");
  const groupLag = gauge(M.groupLag, 'Entries of the stream the consumer group has not read');
  const reconnects = meter.createObservableCounter(M.reconnects, {
    description: 'Connections the transport lost and re-made',
  });
  const failovers = meter.createObservableCounter(M.failovers, {
    description: 'Broker elections (ipc failover)',
  });
  const ffiCalls = meter.createObservableCounter(M.ffiCalls, {
    description: 'Calls made to an FFI runtime',
  });
  const ffiQueue = gauge(M.ffiQueueDepth, 'Calls queued for an FFI runtime');
  const callback: OtelApi.BatchObservableCallback = result => {
    for (const slot of slots()) {
      for (const [field, instrument] of counters) {
        if (slot[field] > 0) result.observe(instrument, slot[field], slot.attributes);
      }
    }
    for (const source of sources) {
      let stats: object;
      try {
        stats = source.read();
      } catch {
        continue; // a closed runtime or bus: nothing to report
      }
      if (source.kind === 'ffi') {
        const s = numbers(stats);
        const attrs = { runtime: source.name };
        if (s.calls !== undefined) result.observe(ffiCalls, s.calls, attrs);
        if (s.queued !== undefined) result.observe(ffiQueue, s.queued, attrs);
        continue;
      }
      const bus = numbers(stats);
      const transport = numbers((stats as { transport?: unknown }).transport);
      const attrs = { transport: source.name };
      if (bus.queued !== undefined) result.observe(depth, bus.queued, attrs);
      if (bus.queueHighWater !== undefined) result.observe(highWater, bus.queueHighWater, attrs);
      if (bus.inFlight !== undefined) result.observe(inFlight, bus.inFlight, attrs);
      if (bus.running !== undefined) result.observe(running, bus.running, attrs);
      for (const [stat, value] of Object.entries(transport)) {
        result.observe(transportStat, value, { transport: source.name, stat });
      }
      const named: [OtelApi.Observable, readonly string[]][] = [
        [lost, STAT_KEYS.lost],
        [deadLettered, STAT_KEYS.deadLettered],
        [groupLag, STAT_KEYS.groupLag],
        [reconnects, STAT_KEYS.reconnects],
        [failovers, STAT_KEYS.failovers],
      ];
      for (const [instrument, keys] of named) {
        const value = first(transport, keys);
        if (value !== undefined) result.observe(instrument, value, attrs);
      }
    }
  };
  const observed = [
    ...counters.map(([, instrument]) => instrument),
    lost,
    deadLettered,
    depth,
    highWater,
    inFlight,
    running,
    transportStat,
    groupLag,
    reconnects,
    failovers,
    ffiCalls,
    ffiQueue,
  ];
  meter.addBatchObservableCallback(callback, observed);
  return {
    handlerDuration: histogram(M.handlerDuration, 'Duration of one handler call'),
    publishDuration: histogram(M.publishDuration, 'From post() until the transport accepted'),
    stop: () => meter.removeBatchObservableCallback(callback, observed),
  };
}

import { booleanOption, integerOption, optionsObject } from '../common/options.validation.js';
import type { OtelSettings } from './otel.instrumentation.js';

/** Options of {@link enableTelemetry}. @publicApi */
export interface HeraldTelemetryOptions {
  /**
   * The cardinality guard: at most this many distinct (transport, source,
   * event) attribute sets, and as many handler sets, per process; further
   * ones are recorded as `_other`. @default 200
   */
  maxAttributeSets?: number;
  /** Record metrics. @default true */
  metrics?: boolean;
  /** Create spans and carry the trace context in headers. @default true */
  traces?: boolean;
}

const SCOPE = 'enableTelemetry';
const KEYS = [
  'maxAttributeSets',
  'metrics',
  'traces',
] as const satisfies readonly (keyof HeraldTelemetryOptions)[];

/** Checks and completes the options; throws `InvalidOptionsError` naming the option. */
export function resolveTelemetryOptions(options: HeraldTelemetryOptions = {}): OtelSettings {
  const given = optionsObject(SCOPE, options, KEYS);
  return {
    maxAttributeSets: integerOption(SCOPE, 'maxAttributeSets', given.maxAttributeSets, 200, 1),
    metrics: booleanOption(SCOPE, 'metrics', given.metrics, true),
    traces: booleanOption(SCOPE, 'traces', given.traces, true),
  };
}

import {
  invalidOption,
  nonNegativeNumberOption,
  optionsObject,
  positiveNumberOption,
} from '../common/options.validation.js';

/** Options of {@link HeraldHealthIndicator.isHealthy}. @publicApi */
export interface HeraldHealthOptions {
  /**
   * redis in group mode: down when the consumer lag (entries of the stream
   * the group has not read yet) exceeds this, when the transport's stats
   * expose the lag. @default 10000
   */
  maxLag?: number;
  /**
   * pg: down when the last heartbeat answer of the LISTEN connection is older
   * than this, when the transport's stats expose it, in ms. @default 60000
   */
  maxHeartbeatAgeMs?: number;
}

/** Options of {@link HeraldHealthIndicator.isRuntimeHealthy}. @publicApi */
export interface HeraldRuntimeHealthOptions {
  /** The runtimes checked, by name. @default every runtime of FfiModule */
  names?: readonly string[];
  /**
   * Down when a runtime's queue holds at least this share of `maxQueue`
   * (0 < share <= 1); at 1 only a full queue is down. @default 0.9
   */
  maxQueueShare?: number;
}

/** Resolved {@link HeraldHealthOptions}. */
export interface ResolvedHeraldHealthOptions {
  readonly maxLag: number;
  readonly maxHeartbeatAgeMs: number;
}

/** Resolved {@link HeraldRuntimeHealthOptions}. */
export interface ResolvedHeraldRuntimeHealthOptions {
  readonly names?: readonly string[];
  readonly maxQueueShare: number;
}

const SCOPE = 'HeraldHealthIndicator';

/** Throws `InvalidOptionsError` naming the option, the rule and the value (unknown keys too). */
export function resolveHeraldHealthOptions(
  options: HeraldHealthOptions | undefined,
): ResolvedHeraldHealthOptions {
  const given = optionsObject<HeraldHealthOptions>(SCOPE, options, ['maxLag', 'maxHeartbeatAgeMs']);
  return {
    maxLag: nonNegativeNumberOption(SCOPE, 'maxLag', given.maxLag, 10_000),
    maxHeartbeatAgeMs: positiveNumberOption(
      SCOPE,
      'maxHeartbeatAgeMs',
      given.maxHeartbeatAgeMs,
      60_000,
    ),
  };
}

/** Throws `InvalidOptionsError` naming the option, the rule and the value (unknown keys too). */
export function resolveHeraldRuntimeHealthOptions(
  options: HeraldRuntimeHealthOptions | undefined,
): ResolvedHeraldRuntimeHealthOptions {
  const scope = `${SCOPE}.isRuntimeHealthy`;
  const given = optionsObject<HeraldRuntimeHealthOptions>(scope, options, [
    'names',
    'maxQueueShare',
  ]);
  if (
    given.names !== undefined &&
    (!Array.isArray(given.names) || given.names.some(name => typeof name !== 'string'))
  ) {
    invalidNames(scope, given.names);
  }
  const share = positiveNumberOption(scope, 'maxQueueShare', given.maxQueueShare, 0.9);
  if (share > 1) invalidShare(scope, share);
  return { names: given.names, maxQueueShare: share };
}

function invalidNames(scope: string, value: unknown): never {
  return invalidOption(scope, 'names', 'an array of runtime names', value);
}

function invalidShare(scope: string, value: unknown): never {
  return invalidOption(scope, 'maxQueueShare', 'a number > 0 and <= 1', value);
}

import path from 'node:path';
import { InvalidOptionsError } from '../common/errors.js';
import { consoleLogger, type HeraldLogger } from '../common/logger.js';
import {
  booleanOption,
  integerOption,
  invalidOption,
  objectOption,
  oneOfOption,
  optionsObject,
  positiveNumberOption,
  stringOption,
} from '../common/options.validation.js';
import { DEFAULT_MAX_QUEUE } from './ffi.constants.js';

/** How a runtime's `rsp_len == 0` answers read (see {@link NativeRuntimeOptions.zeroLength}). @publicApi */
export type NativeZeroLength = 'cstring' | 'empty';

/** How to load a runtime. @publicApi */
export interface NativeRuntimeOptions {
  /** Passed to the runtime's init as a NUL-terminated string; the host frees its copy after init. @default undefined (NULL) */
  cfg?: string;
  /** Queued calls the runtime's pollers have not taken yet, beyond which `call` rejects with `QueueFullError`. @default 65536 */
  maxQueue?: number;
  /** A name for errors, logs and stats. @default the library file name */
  name?: string;
  /** Open the library with RTLD_GLOBAL (shims that load other libraries, e.g. an embedded Python, need it). @default false */
  global?: boolean;
  /**
   * How to read an answer with `rsp != NULL` and `rsp_len == 0`: `'cstring'`
   * (the ABI's reading) as a NUL-terminated string, read no further than the
   * block the allocator reports; `'empty'` as an empty answer, for runtimes
   * that answer `malloc(0)` with length 0 (the original's Go echo).
   * @default 'cstring'
   */
  zeroLength?: NativeZeroLength;
  /**
   * The longest, in microseconds, an idle poll thread of this runtime spins
   * (checking for a new call, yielding the CPU between checks) before it
   * sleeps; `0` never spins. Adaptive, like glibc's adaptive mutexes: a
   * poller spins only while calls come one at a time (with more in flight a
   * sleeping poller wakes to a batch, which serves the event loop better)
   * and at least half of its recent waits for a call were no longer than
   * this, for up to twice their average (capped by this value); it stops
   * when waits get long (an idle or slow caller, a loaded machine) and
   * resumes when they get short again. With more in flight it also spins
   * while the event loop is delivering answers on another CPU (the callers'
   * next calls are then microseconds away, and waking a sleeping poller on
   * another CPU is the dearest step of a call on a VM). One poller of a
   * runtime spins at a time, and none when the process may use one CPU only
   * (its affinity mask) or shares the event loop's CPU. A spin that finds the call saves the futex wait and wake
   * and the scheduler wake-up of the poller: calls made one at a time get
   * faster, at the cost of up to this much CPU of the poller's core each time
   * it runs out of calls.
   * @default 50
   */
  pollerSpinUs?: number;
  /** Where warnings (broken answers) and state changes (debug) go. @default warnings to stderr */
  logger?: HeraldLogger;
}

/** Per-call options. @publicApi */
export interface NativeCallOptions {
  /** Reject with `NativeCallTimeoutError` when no answer came in time; a late answer is freed when it arrives. @default undefined (no timeout) */
  timeoutMs?: number;
  /** Abandon the call when aborted: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** {@link NativeRuntimeOptions} with every default applied. */
export interface ResolvedNativeRuntimeOptions {
  lib: string;
  cfg: string | undefined;
  maxQueue: number;
  name: string;
  global: boolean;
  zeroLength: NativeZeroLength;
  pollerSpinUs: number;
  logger: HeraldLogger;
}

const SCOPE = 'NativeRuntime';
export const NATIVE_RUNTIME_OPTION_KEYS = [
  'cfg',
  'maxQueue',
  'name',
  'global',
  'zeroLength',
  'pollerSpinUs',
  'logger',
] as const satisfies readonly (keyof NativeRuntimeOptions)[];
const ZERO_LENGTHS: readonly NativeZeroLength[] = ['cstring', 'empty'];
/** {@link NativeRuntimeOptions.pollerSpinUs}: its default and its bound (1 s). */
export const DEFAULT_POLLER_SPIN_US = 50;
const MAX_POLLER_SPIN_US = 1_000_000;

/** Checks `logger` has the methods herald calls. */
export function loggerOption(scope: string, value: unknown): HeraldLogger | undefined {
  if (value === undefined) return undefined;
  const logger = objectOption(scope, 'logger', value) as Record<string, unknown>;
  for (const method of ['log', 'warn', 'error'] as const) {
    if (typeof logger[method] !== 'function')
      invalidOption(scope, 'logger', `a logger with log, warn and error methods`, value);
  }
  return value as HeraldLogger;
}

/**
 * `NativeRuntime.load(lib, options)` resolved: throws `InvalidOptionsError`
 * naming the option, the rule and the value with its type; unknown keys are
 * refused.
 */
export function resolveNativeRuntimeOptions(
  lib: unknown,
  options: NativeRuntimeOptions | undefined,
): ResolvedNativeRuntimeOptions {
  const checkedLib = stringOption(SCOPE, 'lib', lib, undefined);
  if (checkedLib === undefined) {
    invalidOption(SCOPE, 'lib', 'a non-empty string (a path, a file name or a short name)', lib);
  }
  const given = optionsObject(SCOPE, options, [...NATIVE_RUNTIME_OPTION_KEYS]);
  const cfg = given.cfg;
  if (cfg !== undefined && (typeof cfg !== 'string' || cfg.includes('\0'))) {
    invalidOption(
      SCOPE,
      'cfg',
      'a string without NUL characters (it is passed as a C string)',
      cfg,
    );
  }
  const name = stringOption(SCOPE, 'name', given.name, undefined);
  return {
    lib: checkedLib,
    cfg,
    maxQueue: integerOption(SCOPE, 'maxQueue', given.maxQueue, DEFAULT_MAX_QUEUE, 1, 2 ** 31 - 1),
    name: name ?? path.basename(checkedLib),
    global: booleanOption(SCOPE, 'global', given.global, false),
    zeroLength: oneOfOption(SCOPE, 'zeroLength', given.zeroLength, ZERO_LENGTHS, 'cstring'),
    pollerSpinUs: integerOption(
      SCOPE,
      'pollerSpinUs',
      given.pollerSpinUs,
      DEFAULT_POLLER_SPIN_US,
      0,
      MAX_POLLER_SPIN_US,
    ),
    logger: loggerOption(SCOPE, given.logger) ?? consoleLogger,
  };
}

/** A call's options resolved, or the `InvalidOptionsError` to reject the call with. */
export function resolveNativeCallOptions(
  options: NativeCallOptions | undefined,
): NativeCallOptions | InvalidOptionsError {
  if (options === undefined) return {};
  try {
    const scope = 'NativeRuntime.call';
    const given = optionsObject(scope, options, ['timeoutMs', 'signal']);
    const timeoutMs = positiveNumberOption(scope, 'timeoutMs', given.timeoutMs, undefined);
    const signal = given.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal))
      invalidOption(scope, 'signal', 'an AbortSignal', signal);
    return { timeoutMs, signal };
  } catch (error) {
    if (error instanceof InvalidOptionsError) return error;
    throw error;
  }
}

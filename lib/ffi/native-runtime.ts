import type { Observable } from 'rxjs';
import { InvalidOptionsError } from '../common/errors.js';
import {
  InvalidNativeRequestError,
  NativeInitError,
  NativeLibraryError,
  RuntimeUnloadedError,
} from './ffi.errors.js';
import { nativeAddon } from './native-addon.js';
import { CallTable, type NativeRequest } from './native-runtime.call-table.js';
import { LoadedRuntime, type NativeRuntimeStatus } from './native-runtime.core.js';
import { resolveLibrary } from './native-runtime.library.js';
import {
  resolveNativeCallOptions,
  resolveNativeRuntimeOptions,
  type NativeCallOptions,
  type NativeRuntimeOptions,
} from './native-runtime.options.js';

// The parts, re-exported so `native-runtime.js` keeps offering what it did.
export type { NativeRequest } from './native-runtime.call-table.js';
export type { NativeRuntimeState, NativeRuntimeStatus } from './native-runtime.core.js';
export { resolveLibrary } from './native-runtime.library.js';
export type {
  NativeCallOptions,
  NativeRuntimeOptions,
  NativeZeroLength,
} from './native-runtime.options.js';

/** Counters of one loaded runtime (shared by every handle on it). @publicApi */
export interface NativeRuntimeStats {
  name: string;
  /** The real path of the library. */
  path: string;
  /** Calls waiting for an answer (queued or running in the runtime). */
  inFlight: number;
  /** Calls queued that no poller has taken yet. */
  queued: number;
  /** Poll threads blocked in task_poll, waiting for work. */
  idlePollers: number;
  /** The bound on a poller's spin in effect, in µs (`pollerSpinUs`; 0 when the process may use one CPU only). */
  pollerSpinUs: number;
  /** Times an idle poller spun before sleeping (adaptive: only while recent waits were short). */
  pollerSpins: number;
  /** Spins that found a call before their bound (no sleep, no wake-up). */
  pollerSpinHits: number;
  maxQueue: number;
  calls: number;
  answered: number;
  failed: number;
  refusedFull: number;
  timedOut: number;
  /** Answers that arrived after their call timed out or was aborted (freed). */
  late: number;
  /** `rsp_len == 0` answers with no NUL within their block (`zeroLength: 'cstring'`): read as empty, logged. */
  unterminated: number;
  /** Handles still open on this runtime. */
  references: number;
  unloaded: boolean;
}

let table: CallTable | undefined;
const callTable = (): CallTable => (table ??= new CallTable(nativeAddon()));

/** The runtimes loaded in this JS environment, by real library path + cfg. */
const loadedRuntimes = new Map<string, LoadedRuntime>();
/** Keys of runtimes unloaded in this process: their init cannot run again. */
const unloadedKeys = new Set<string>();

/**
 * A runtime loaded from a shared library written to the lua-resty-ffi C ABI
 * (see lib/ffi/native/herald_ffi.h). Calls are queued to the runtime's own
 * poll threads and answered on the event loop, which never blocks.
 *
 * Loading is idempotent and reference counted per real library path + cfg:
 * each `load` returns a handle, and the runtime is unloaded when the last
 * handle is closed. An unloaded runtime cannot be loaded again in the same
 * process (a Go runtime cannot restart; the library is never dlclose'd).
 * @publicApi
 */
export class NativeRuntime {
  private closedHandle = false;

  private constructor(private readonly core: LoadedRuntime) {}

  /**
   * Loads (or shares) a runtime. Throws `NativeLibraryError` when the library
   * cannot be opened, `NativeInitError` when its init fails or is missing,
   * `RuntimeUnloadedError` when this library + cfg was unloaded before.
   */
  static load(lib: string, options?: NativeRuntimeOptions): NativeRuntime {
    const { cfg, maxQueue, name, global, zeroLength, pollerSpinUs, logger } =
      resolveNativeRuntimeOptions(lib, options);
    const resolved = resolveLibrary(lib);
    const key = `${resolved}\0${cfg === undefined ? '\u0001null' : cfg}`;
    if (unloadedKeys.has(key)) {
      throw new RuntimeUnloadedError(
        `runtime "${name}" (${resolved}) was unloaded and cannot be initialised again in this process ` +
          '(a runtime such as Go cannot restart): load it with another cfg, or restart the process',
      );
    }
    let core = loadedRuntimes.get(key);
    if (core && core.maxQueue !== maxQueue) {
      throw new InvalidOptionsError(
        `runtime "${name}" is already loaded with maxQueue ${core.maxQueue}; cannot share it with maxQueue ${maxQueue}`,
      );
    }
    if (core && core.zeroLength !== zeroLength) {
      throw new InvalidOptionsError(
        `runtime "${name}" is already loaded with zeroLength '${core.zeroLength}'; cannot share it with '${zeroLength}'`,
      );
    }
    if (core && core.pollerSpinUs !== pollerSpinUs) {
      throw new InvalidOptionsError(
        `runtime "${name}" is already loaded with pollerSpinUs ${core.pollerSpinUs}; cannot share it with ${pollerSpinUs}`,
      );
    }
    if (!core) {
      const table = callTable();
      const result = table.addon.load(
        resolved,
        cfg ?? null,
        maxQueue,
        global,
        zeroLength === 'empty' ? 1 : 0,
        pollerSpinUs,
      );
      if (!result.ok) {
        if (result.kind === 'open') throw new NativeLibraryError(lib, result.message);
        throw new NativeInitError(
          name,
          lib,
          result.kind === 'init' ? result.rc : undefined,
          result.message,
          result.stderr,
          result.undefinedSymbol && !global
            ? 'It reports an undefined symbol: load it with global: true (a runtime that opens other ' +
                'libraries, such as an embedded Python importing extension modules, needs its symbols ' +
                'and those of the libraries it links in the global scope)'
            : undefined,
        );
      }
      core = new LoadedRuntime(key, result.id, name, result.path, maxQueue, zeroLength, logger);
      core.pollerSpinUs = pollerSpinUs;
      loadedRuntimes.set(key, core);
    }
    core.references++;
    return new NativeRuntime(core);
  }

  /** The runtime's name (for errors and stats). */
  get name(): string {
    return this.core.name;
  }

  /** The real path of the loaded library. */
  get path(): string {
    return this.core.path;
  }

  /**
   * The runtime's state, replayed to each subscriber: `loaded`, then
   * `unloaded` (final; the observable completes). Shared by every handle.
   */
  get status$(): Observable<NativeRuntimeStatus> {
    return this.core.status$;
  }

  /** True once this handle is closed (or the runtime unloaded). */
  get closed(): boolean {
    return this.closedHandle || this.core.unloaded;
  }

  /**
   * Sends one request to the runtime and resolves with its answer (an empty
   * Buffer for none). Rejects with `NativeRuntimeError` (rc != 0),
   * `QueueFullError`, `NativeCallTimeoutError`, the abort reason, or
   * `RuntimeUnloadedError`.
   */
  call(req: NativeRequest, options?: NativeCallOptions): Promise<Buffer> {
    if (this.closed) return Promise.reject(this.core.unloadedError());
    if (typeof req !== 'string' && !(req instanceof Uint8Array)) {
      return Promise.reject(
        new InvalidNativeRequestError(
          `a request must be a string or a Buffer/Uint8Array, got ${typeof req}`,
        ),
      );
    }
    // No options (the common case): nothing to check, and no object made per call.
    const resolved = options === undefined ? undefined : resolveNativeCallOptions(options);
    if (resolved instanceof InvalidOptionsError) return Promise.reject(resolved);
    return callTable().submit(this.core, req, resolved);
  }

  /**
   * Closes this handle. The last handle closed unloads the runtime: calls no
   * poller took yet reject with `RuntimeUnloadedError`, every poll thread
   * gets NULL from task_poll, and calls already taken still get their answers.
   */
  close(): void {
    if (this.closedHandle) return;
    this.closedHandle = true;
    const core = this.core;
    if (--core.references > 0 || core.unloaded) return;
    core.markUnloaded();
    loadedRuntimes.delete(core.key);
    unloadedKeys.add(core.key);
    callTable().unload(core);
  }

  /** Counters of the runtime (shared by every handle on it). */
  stats(): NativeRuntimeStats {
    const core = this.core;
    const queue = callTable().addon.stats(core.id);
    return {
      name: core.name,
      path: core.path,
      inFlight: core.inFlight,
      queued: queue.queued,
      idlePollers: queue.idlePollers,
      pollerSpinUs: queue.spinUs,
      pollerSpins: queue.spins,
      pollerSpinHits: queue.spinHits,
      maxQueue: core.maxQueue,
      calls: core.calls,
      answered: core.answered,
      failed: core.failed,
      refusedFull: core.refusedFull,
      timedOut: core.timedOut,
      late: core.late,
      unterminated: core.unterminated,
      references: core.references,
      unloaded: core.unloaded,
    };
  }
}

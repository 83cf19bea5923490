import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { InvalidOptionsError, QueueFullError } from '../common/errors.js';
import { consoleLogger } from '../common/logger.js';
import { WarningLimiter } from '../common/warning-limiter.js';
import { DEFAULT_MAX_QUEUE } from './ffi.constants.js';
import {
  InvalidNativeRequestError,
  NativeCallTimeoutError,
  NativeInitError,
  NativeLibraryError,
  NativeRuntimeError,
  RuntimeUnloadedError,
} from './ffi.errors.js';
import { nativeAddon, type HeraldFfiAddon } from './native-addon.js';

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
}

/** How a runtime's `rsp_len == 0` answers read (see {@link NativeRuntimeOptions.zeroLength}). @publicApi */
export type NativeZeroLength = 'cstring' | 'empty';

/** Per-call options. @publicApi */
export interface NativeCallOptions {
  /** Reject with `NativeCallTimeoutError` when no answer came in time; a late answer is freed when it arrives. @default undefined (no timeout) */
  timeoutMs?: number;
  /** Abandon the call when aborted: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

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

/** The request types a runtime accepts: bytes, or a string sent as UTF-8. @publicApi */
export type NativeRequest = string | Buffer | Uint8Array;

type Settle = (value: Buffer) => void;
type Fail = (error: unknown) => void;

const EMPTY = (): Buffer => Buffer.alloc(0);
const warnings = new WarningLimiter(consoleLogger);
const META_BATCH = 4096;

/**
 * The calls in flight of this JS environment, by slot. The addon answers
 * with slots in batches (one N-API call per batch), so per-call state lives
 * in flat arrays rather than one object or closure per call.
 */
class CallTable {
  private readonly resolvers: (Settle | undefined)[] = [];
  private readonly rejecters: (Fail | undefined)[] = [];
  private readonly owners: (LoadedRuntime | undefined)[] = [];
  private readonly cleanups: ((() => void) | undefined)[] = [];
  private readonly freeSlots: number[] = [];
  private readonly meta = new Int32Array(META_BATCH * 4);
  private inFlight = 0;

  constructor(readonly addon: HeraldFfiAddon) {
    addon.setup(this.onBatch, this.meta);
  }

  submit(
    owner: LoadedRuntime,
    req: NativeRequest,
    options: NativeCallOptions | undefined,
  ): Promise<Buffer> {
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const slot = this.freeSlots.length > 0 ? this.freeSlots.pop()! : this.owners.length;
    const status = this.addon.submit(owner.id, slot, req);
    if (status !== 0) {
      if (slot < this.owners.length) this.freeSlots.push(slot);
      if (status === 1) {
        owner.refusedFull++;
        return Promise.reject(new QueueFullError(`native runtime "${owner.name}"`, owner.maxQueue));
      }
      return Promise.reject(owner.unloadedError());
    }
    owner.calls++;
    owner.inFlight++;
    if (this.inFlight++ === 0) this.addon.ref();
    return new Promise<Buffer>((resolve, reject) => {
      this.resolvers[slot] = resolve;
      this.rejecters[slot] = reject;
      this.owners[slot] = owner;
      if (options?.timeoutMs !== undefined || signal)
        this.cleanups[slot] = this.watch(slot, owner, options!);
    });
  }

  /** Arms the timeout and abort listener of one call; returns their disarm. */
  private watch(slot: number, owner: LoadedRuntime, options: NativeCallOptions): () => void {
    const { timeoutMs, signal } = options;
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            owner.timedOut++;
            this.abandon(slot, new NativeCallTimeoutError(owner.name, timeoutMs));
          }, timeoutMs);
    const onAbort = (): void => this.abandon(slot, signal!.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    return () => {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
  }

  /** Rejects a call still in the runtime; its slot stays taken until the answer arrives. */
  private abandon(slot: number, reason: unknown): void {
    const reject = this.rejecters[slot];
    if (!reject) return;
    this.cleanups[slot]?.();
    this.cleanups[slot] = undefined;
    this.resolvers[slot] = undefined;
    this.rejecters[slot] = undefined;
    this.addon.cancel(slot);
    this.owners[slot]!.inFlight--;
    this.settled();
    reject(reason);
  }

  private settled(): void {
    // The handle keeps the process alive only while someone awaits an answer.
    if (--this.inFlight === 0) this.addon.unref();
  }

  private release(slot: number): void {
    this.owners[slot] = undefined;
    this.freeSlots.push(slot);
  }

  private readonly onBatch = (count: number, arena?: Buffer, externals?: Buffer[]): void => {
    const meta = this.meta;
    for (let i = 0, m = 0; i < count; i++, m += 4) {
      const slot = meta[m];
      const owner = this.owners[slot];
      const resolve = this.resolvers[slot];
      const reject = this.rejecters[slot];
      this.release(slot);
      if (!resolve || !reject || !owner) {
        // Abandoned (timeout or abort): the addon already freed the answer.
        if (owner) owner.late++;
        continue;
      }
      this.resolvers[slot] = undefined;
      this.rejecters[slot] = undefined;
      const cleanup = this.cleanups[slot];
      if (cleanup) {
        cleanup();
        this.cleanups[slot] = undefined;
      }
      let offset = meta[m + 2];
      const length = meta[m + 3];
      if (offset === -3) {
        owner.unterminated++;
        warnings.warn(
          `unterminated:${owner.name}`,
          `nest-herald/ffi: runtime "${owner.name}" answered rsp_len 0 with no NUL within the block; ` +
            "read as an empty answer (a runtime answering malloc(0) needs zeroLength: 'empty')",
        );
        offset = 0;
      }
      const body =
        offset >= 0
          ? length === 0
            ? EMPTY()
            : arena!.subarray(offset, offset + length)
          : externals![length];
      owner.inFlight--;
      this.inFlight--;
      const rc = meta[m + 1];
      if (rc === 0) {
        owner.answered++;
        resolve(body);
      } else {
        owner.failed++;
        reject(new NativeRuntimeError(owner.name, rc, body));
      }
    }
    if (this.inFlight === 0) this.addon.unref();
  };

  /** Unload: the calls no poller took are rejected; they never ran. */
  unload(owner: LoadedRuntime): void {
    const slots = this.addon.unload(owner.id);
    for (const slot of slots) {
      const reject = this.rejecters[slot];
      this.cleanups[slot]?.();
      this.cleanups[slot] = undefined;
      this.resolvers[slot] = undefined;
      this.rejecters[slot] = undefined;
      this.release(slot);
      if (!reject) continue;
      owner.inFlight--;
      this.settled();
      reject(new RuntimeUnloadedError(`runtime "${owner.name}" was unloaded before this call ran`));
    }
  }
}

let table: CallTable | undefined;
const callTable = (): CallTable => (table ??= new CallTable(nativeAddon()));

/** One initialised runtime (library + cfg), shared by every handle on it. */
class LoadedRuntime {
  inFlight = 0;
  calls = 0;
  answered = 0;
  failed = 0;
  refusedFull = 0;
  timedOut = 0;
  late = 0;
  unterminated = 0;
  references = 0;
  unloaded = false;

  constructor(
    readonly key: string,
    readonly id: number,
    readonly name: string,
    readonly path: string,
    readonly maxQueue: number,
    readonly zeroLength: NativeZeroLength,
  ) {}

  unloadedError(): RuntimeUnloadedError {
    return new RuntimeUnloadedError(`runtime "${this.name}" is unloaded`);
  }
}

const loadedRuntimes = new Map<string, LoadedRuntime>();
const unloadedKeys = new Set<string>();

/**
 * The file `NativeRuntime.load` opens for `lib`, as the original takes it: a path (anything with a `/`), a file name
 * (`libdemo.so`) or a short name (`demo` → `libdemo.so`); names are searched
 * on LD_LIBRARY_PATH as it is now (glibc reads it once at start-up), then
 * left to dlopen's own search. @publicApi
 */
export function resolveLibrary(lib: string): string {
  let candidate: string;
  if (lib.includes('/')) candidate = path.resolve(lib);
  else {
    const file = /\.so(\.\d+)*$/.test(lib) ? lib : `lib${lib}.so`;
    const dirs = (process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean);
    const found = dirs.map(dir => path.resolve(dir, file)).find(full => existsSync(full));
    if (!found) return file;
    candidate = found;
  }
  return existsSync(candidate) ? realpathSync(candidate) : candidate;
}

function validate(lib: unknown, options: NativeRuntimeOptions): number {
  if (
    options.zeroLength !== undefined &&
    options.zeroLength !== 'cstring' &&
    options.zeroLength !== 'empty'
  ) {
    throw new InvalidOptionsError(
      `zeroLength must be 'cstring' or 'empty', got ${String(options.zeroLength)}`,
    );
  }
  if (typeof lib !== 'string' || lib.length === 0) {
    throw new InvalidOptionsError(
      `lib must be a non-empty string (a path, a file name or a short name), got ${String(lib)}`,
    );
  }
  const { cfg, maxQueue = DEFAULT_MAX_QUEUE } = options;
  if (cfg !== undefined && (typeof cfg !== 'string' || cfg.includes('\0'))) {
    throw new InvalidOptionsError(
      'cfg must be a string without NUL characters (it is passed as a C string)',
    );
  }
  if (!Number.isInteger(maxQueue) || maxQueue < 1 || maxQueue > 2 ** 31 - 1) {
    throw new InvalidOptionsError(
      `maxQueue must be an integer from 1 to 2^31-1, got ${String(maxQueue)}`,
    );
  }
  return maxQueue;
}

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
  static load(lib: string, options: NativeRuntimeOptions = {}): NativeRuntime {
    const maxQueue = validate(lib, options);
    const resolved = resolveLibrary(lib);
    const key = `${resolved}\0${options.cfg === undefined ? '\u0001null' : options.cfg}`;
    const name = options.name ?? path.basename(lib);
    if (unloadedKeys.has(key)) {
      throw new RuntimeUnloadedError(
        `runtime "${name}" (${resolved}) was unloaded and cannot be initialised again in this process ` +
          '(a runtime such as Go cannot restart): load it with another cfg, or restart the process',
      );
    }
    const zeroLength = options.zeroLength ?? 'cstring';
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
    if (!core) {
      const table = callTable();
      const result = table.addon.load(
        resolved,
        options.cfg ?? null,
        maxQueue,
        options.global ?? false,
        zeroLength === 'empty' ? 1 : 0,
      );
      if (!result.ok) {
        if (result.kind === 'open') throw new NativeLibraryError(lib, result.message);
        const global = options.global ?? false;
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
      core = new LoadedRuntime(key, result.id, name, result.path, maxQueue, zeroLength);
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
    if (options !== undefined) {
      const { timeoutMs } = options;
      if (
        timeoutMs !== undefined &&
        !(typeof timeoutMs === 'number' && timeoutMs > 0 && Number.isFinite(timeoutMs))
      ) {
        return Promise.reject(
          new InvalidOptionsError(`timeoutMs must be a positive number, got ${String(timeoutMs)}`),
        );
      }
    }
    return callTable().submit(this.core, req, options);
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
    core.unloaded = true;
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

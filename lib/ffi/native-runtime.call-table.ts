import { QueueFullError } from '../common/errors.js';
import { NativeCallTimeoutError, NativeRuntimeError, RuntimeUnloadedError } from './ffi.errors.js';
import type { HeraldFfiAddon } from './native-addon.js';
import type { LoadedRuntime } from './native-runtime.core.js';
import type { NativeCallOptions } from './native-runtime.options.js';

/** The request types a runtime accepts: bytes, or a string sent as UTF-8. @publicApi */
export type NativeRequest = string | Buffer | Uint8Array;

type Settle = (value: Buffer) => void;
type Fail = (error: unknown) => void;

const EMPTY = (): Buffer => Buffer.alloc(0);
const META_BATCH = 4096;

/**
 * Node's own Buffer class (what `Buffer.from(arrayBuffer, offset, length)`
 * and `subarray` make): an answer is a view of its chunk's ArrayBuffer made
 * with it directly. `arena.subarray()` per answer read the arena's
 * `.buffer` through a C++ builtin each time (callgrind: ~140 instructions
 * per answer); the chunk's ArrayBuffer and offset are now read once per
 * chunk.
 */
type View = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => Buffer;
const species = (Buffer as unknown as { [Symbol.species]?: View })[Symbol.species];
const View: View =
  typeof species === 'function' && species.prototype === Buffer.prototype
    ? species
    : (function (buffer: ArrayBufferLike, byteOffset: number, length: number): Buffer {
        return Buffer.from(buffer, byteOffset, length);
      } as unknown as View);

/**
 * The calls in flight of this JS environment, by slot. The addon answers
 * with slots in batches (one N-API call per batch), so per-call state lives
 * in flat arrays rather than one object or closure per call.
 */
export class CallTable {
  private readonly resolvers: (Settle | undefined)[] = [];
  private readonly rejecters: (Fail | undefined)[] = [];
  private readonly owners: (LoadedRuntime | undefined)[] = [];
  private readonly cleanups: ((() => void) | undefined)[] = [];
  private readonly freeSlots: number[] = [];
  private readonly meta = new Int32Array(META_BATCH * 4);
  /** The slot whose promise `executor` is making (set right before, read synchronously). */
  private pendingSlot = 0;
  /**
   * One executor for every call's promise: it files the resolving functions
   * under `pendingSlot`. A closure per call (over slot, owner and options)
   * was an object and a context allocated per call.
   */
  private readonly executor = (resolve: Settle, reject: Fail): void => {
    this.resolvers[this.pendingSlot] = resolve;
    this.rejecters[this.pendingSlot] = reject;
  };

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
    const status =
      typeof req === 'string'
        ? this.addon.submit(owner.id, slot, req)
        : this.addon.submitBytes(owner.id, slot, req);
    if (status !== 0) {
      if (slot < this.owners.length) this.freeSlots.push(slot);
      if (status === 1) {
        owner.refusedFull++;
        return Promise.reject(new QueueFullError(`native runtime "${owner.name}"`, owner.maxQueue));
      }
      return Promise.reject(owner.unloadedError());
    }
    // The addon keeps the loop alive while it has calls in flight: no call
    // from here when the first starts or the last ends.
    owner.calls++;
    owner.inFlight++;
    this.owners[slot] = owner;
    this.pendingSlot = slot;
    const promise = new Promise<Buffer>(this.executor);
    if (options !== undefined && (options.timeoutMs !== undefined || signal))
      this.cleanups[slot] = this.watch(slot, owner, options);
    return promise;
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
    reject(reason);
  }

  private release(slot: number): void {
    this.owners[slot] = undefined;
    this.freeSlots.push(slot);
  }

  private readonly onBatch = (count: number, arena?: Uint8Array, externals?: Buffer[]): void => {
    const meta = this.meta;
    // The chunk's bytes: read once per chunk (see View).
    const bytes = arena?.buffer;
    const base = arena === undefined ? 0 : arena.byteOffset;
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
        owner.unterminatedAnswer();
        offset = 0;
      }
      const body =
        offset >= 0
          ? length === 0
            ? EMPTY()
            : new View(bytes!, base + offset, length)
          : externals![length];
      owner.inFlight--;
      const rc = meta[m + 1];
      if (rc === 0) {
        owner.answered++;
        resolve(body);
      } else {
        owner.failed++;
        reject(new NativeRuntimeError(owner.name, rc, body));
      }
    }
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
      reject(new RuntimeUnloadedError(`runtime "${owner.name}" was unloaded before this call ran`));
    }
  }
}

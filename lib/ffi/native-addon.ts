import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeAddonError } from './ffi.errors.js';

/** What `load` reports: a runtime id, or why it could not be loaded. */
export type AddonLoadResult =
  | { ok: true; id: number; path: string }
  | {
      ok: false;
      kind: 'open' | 'symbol' | 'init';
      message: string;
      rc: number;
      /** kind 'init': the tail of what init wrote to stderr (also passed on to stderr). */
      stderr?: string;
      /** kind 'init': that text mentions an undefined symbol. */
      undefinedSymbol?: boolean;
    };

export interface AddonRuntimeStats {
  queued: number;
  idlePollers: number;
  maxQueue: number;
  finished: boolean;
  /** The pollers' spin bound in effect, µs (0: never spins). */
  spinUs: number;
  /** Spins begun by idle pollers. */
  spins: number;
  /** Spins that found a task. */
  spinHits: number;
}

/** Counters of the host of this JS environment (lib/ffi/native/host.cc, pools.h). */
export interface AddonHostStats {
  /** Wake-ups of the event loop that delivered answers. */
  wakeups: number;
  /** Calls into JS with answers (one per chunk: one or more per wake-up). */
  batches: number;
  answers: number;
  /** Answers that arrived while a wake-up was delivering and were delivered by it (no wake-up of their own). */
  lateAnswers: number;
  /** Wake-ups that stopped after their last drain round with answers left (the loop was woken again for them). */
  drainYields: number;
  /** Calls posted and not yet answered, abandoned or returned by unload (the loop is kept alive while > 0). */
  awaited: number;
  /** Answers wait right now (in the answer ring or on its overflow stack, not yet taken by a wake-up). */
  completionsWaiting: boolean;
  /** Answers delivered from the answer ring (one record per answer, written by the answering thread). */
  ringAnswers: number;
  /** Answers delivered from the overflow stack (the ring was full when they came). */
  overflowAnswers: number;
  /** Slabs with a Buffer answers are still delivered over (one per slab, not per wake-up). */
  openSlabs: number;
  /** Tasks allocated with malloc so far: flat in steady state (pooled). */
  taskAllocations: number;
  /** Answer slabs allocated so far: flat in steady state (reused). */
  slabAllocations: number;
  /** Slabs in use or pooled. */
  slabsLive: number;
}

/** The JS face of lib/ffi/native/host.cc. */
export interface HeraldFfiAddon {
  setup(
    onBatch: (count: number, arena?: Uint8Array, externals?: Buffer[]) => void,
    meta: Int32Array,
  ): void;
  /**
   * `zeroLength`: 0 reads rsp_len 0 as a NUL-terminated string (bounded by the block), 1 as empty.
   * `spinUs`: the bound of the pollers' adaptive spin (0: never).
   */
  load(
    path: string,
    cfg: string | null,
    maxQueue: number,
    global: boolean,
    zeroLength: 0 | 1,
    spinUs: number,
  ): AddonLoadResult;
  /**
   * 0 posted, 1 queue full, 2 unloaded. A posted call keeps the event loop
   * alive until it is answered, cancelled or returned by unload.
   */
  submit(id: number, slot: number, req: string | Buffer | Uint8Array): 0 | 1 | 2;
  /** `submit` for bytes only (no type check of the request: the common call). */
  submitBytes(id: number, slot: number, req: Uint8Array): 0 | 1 | 2;
  unload(id: number): number[];
  /** The call in `slot` was abandoned: its answer is freed when it comes, and it no longer keeps the loop alive. */
  cancel(slot: number): void;
  stats(id: number): AddonRuntimeStats;
  stats(): AddonHostStats;
  /** Answers up to this many bytes are copied into a shared slab. */
  readonly copyMax: number;
  /** Answers above this many bytes are handed over without a copy (between: a Buffer of their own). */
  readonly zeroCopyMin: number;
  /** Bytes of one answer slab. */
  readonly slabSize: number;
}

/** The addon's folder in the package: node-gyp's build/ and the shipped prebuilds/ are in it. */
const NATIVE_DIR = path.join('lib', 'ffi', 'native');

/**
 * The package root, found by walking up from this file to the first
 * package.json: works from the TypeScript sources (lib/ffi) and the build
 * (dist/lib/ffi), in a checkout and in an app's node_modules.
 */
export function packageRoot(): string | undefined {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** The folder node-gyp-build searches: `<root>/lib/ffi/native` (build/Release, then prebuilds/<platform>-<arch>). */
export function addonDir(): string {
  const root = packageRoot();
  if (!root)
    throw new NativeAddonError('nest-herald/ffi: cannot find the package root of nest-herald');
  return path.join(root, NATIVE_DIR);
}

type NodeGypBuild = { path(dir: string): string };

/** How to get a usable addon, for every error of the loader. */
function howToBuild(root: string): string {
  const inApp = root.split(path.sep).includes('node_modules');
  const script = inApp
    ? 'npm install --no-save node-addon-api && node node_modules/nest-herald/scripts/build-native.mjs'
    : 'npm run build:native';
  return (
    `build it from source with \`${script}\` (needs a C++ compiler, make and python3), ` +
    'or set HERALD_FFI_ADDON to a built herald_ffi.node'
  );
}

/**
 * The addon file this process loads: `HERALD_FFI_ADDON`, else what
 * node-gyp-build finds in the package (a local build first, then the
 * prebuilt binary shipped for this platform). Throws `NativeAddonError`
 * saying how to build one when there is none.
 */
export function addonPath(): string {
  const override = process.env.HERALD_FFI_ADDON;
  if (override) {
    if (!existsSync(override)) {
      throw new NativeAddonError(
        `nest-herald/ffi: HERALD_FFI_ADDON is set to ${override}, which does not exist`,
      );
    }
    return override;
  }
  const dir = addonDir();
  const nodeGypBuild = createRequire(import.meta.url)('node-gyp-build') as NodeGypBuild;
  try {
    return nodeGypBuild.path(dir);
  } catch (error) {
    throw new NativeAddonError(
      `nest-herald/ffi: no native addon for ${process.platform}-${process.arch} ` +
        `(Node ${process.versions.node}): none built in ${path.join(dir, 'build', 'Release')} ` +
        `and no prebuilt binary in ${path.join(dir, 'prebuilds')}; ${howToBuild(dir)}`,
      { cause: error },
    );
  }
}

let loaded: HeraldFfiAddon | undefined;

/** Loads the addon once per JS environment (main thread or worker). */
export function nativeAddon(): HeraldFfiAddon {
  if (loaded) return loaded;
  const found = addonPath();
  try {
    loaded = createRequire(import.meta.url)(found) as HeraldFfiAddon;
  } catch (error) {
    throw new NativeAddonError(
      `nest-herald/ffi: cannot load the native addon ${found}: ${(error as Error).message}; ` +
        howToBuild(path.dirname(found)),
      { cause: error },
    );
  }
  return loaded;
}

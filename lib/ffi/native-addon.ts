import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeAddonError } from './ffi.errors.js';

/** What `load` reports: a runtime id, or why it could not be loaded. */
export type AddonLoadResult =
  | { ok: true; id: number; path: string }
  | { ok: false; kind: 'open' | 'symbol' | 'init'; message: string; rc: number };

export interface AddonRuntimeStats {
  queued: number;
  idlePollers: number;
  maxQueue: number;
  finished: boolean;
}

/** The JS face of lib/ffi/native/host.cc. */
export interface HeraldFfiAddon {
  setup(
    onBatch: (count: number, arena?: Buffer, externals?: Buffer[]) => void,
    meta: Int32Array,
  ): void;
  load(path: string, cfg: string | null, maxQueue: number, global: boolean): AddonLoadResult;
  /** 0 posted, 1 queue full, 2 unloaded. */
  submit(id: number, slot: number, req: string | Buffer | Uint8Array): 0 | 1 | 2;
  unload(id: number): number[];
  cancel(slot: number): void;
  ref(): void;
  unref(): void;
  stats(id: number): AddonRuntimeStats;
  stats(): { wakeups: number; answers: number };
  readonly copyMax: number;
}

const ADDON = path.join('lib', 'ffi', 'native', 'build', 'Release', 'herald_ffi.node');

/**
 * Where the addon is: `HERALD_FFI_ADDON`, else the package root's node-gyp
 * output. The package root is found by walking up from this file, which
 * works from the TypeScript sources (lib/ffi) and the build (dist/lib/ffi).
 */
export function addonCandidates(): string[] {
  const candidates: string[] = [];
  if (process.env.HERALD_FFI_ADDON) candidates.push(process.env.HERALD_FFI_ADDON);
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) {
      candidates.push(path.join(dir, ADDON));
      break;
    }
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return candidates;
}

let loaded: HeraldFfiAddon | undefined;

/** Loads the addon once per JS environment (main thread or worker). */
export function nativeAddon(): HeraldFfiAddon {
  if (loaded) return loaded;
  const candidates = addonCandidates();
  const found = candidates.find(candidate => existsSync(candidate));
  if (!found) {
    throw new NativeAddonError(
      `the nest-herald/ffi native addon is not built (looked for ${candidates.join(', ')}): ` +
        'run `npm run build:native` in the package (needs a C++ compiler, make and python3), or set HERALD_FFI_ADDON',
    );
  }
  try {
    loaded = createRequire(import.meta.url)(found) as HeraldFfiAddon;
  } catch (error) {
    throw new NativeAddonError(
      `cannot load the nest-herald/ffi native addon ${found}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  return loaded;
}

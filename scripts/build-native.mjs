#!/usr/bin/env node
// Builds the FFI host addon (lib/ffi/native -> build/Release/herald_ffi.node)
// with node-gyp and, in a checkout that has them, the C test runtimes
// (test/fixtures/ffi/*.c -> test/fixtures/ffi/build/lib*.so) and test
// programs (test/fixtures/ffi/bin/*.c -> test/fixtures/ffi/build/*, e.g. the
// socket echo server of bench:ffi). Run by
// `npm ci` / `npm install` (the `prepare` script) and `npm run build:native`.
// Quick when nothing changed: each output is rebuilt only when older than
// its sources. `--force` rebuilds everything. `--prebuild` (run by `prepack`)
// also copies the addon, stripped, to lib/ffi/native/prebuilds/<platform>-
// <arch>/: node.abi<N>.glibc.node (this Node's ABI) and node.napi.glibc.node
// (N-API only, every Node): the binaries the package ships, which
// node-gyp-build loads in an app with no compiler. In an app, run from
// node_modules/nest-herald, it is the build-from-source fallback.
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = path.join(root, 'lib', 'ffi', 'native');
const addon = path.join(nativeDir, 'build', 'Release', 'herald_ffi.node');
const fixturesDir = path.join(root, 'test', 'fixtures', 'ffi');
const force = process.argv.includes('--force');
const prebuild = process.argv.includes('--prebuild');
const self = fileURLToPath(import.meta.url);

const mtime = file => (existsSync(file) ? statSync(file).mtimeMs : 0);
const stale = (output, inputs) =>
  force || !existsSync(output) || inputs.some(input => mtime(input) > mtime(output));

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: 'inherit', ...options });
  if (result.error) throw new Error(`${command}: ${result.error.message}`);
  if (result.status !== 0)
    throw new Error(`${command} ${args.join(' ')} exited with ${result.status}`);
}

/** node-gyp downloads Node's headers unless told where an installed copy is. */
function nodedirArgs() {
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))
    ? [`--nodedir=${prefix}`]
    : [];
}

/**
 * node-gyp: ours (a devDependency, in a checkout), else the app's, else the
 * copy bundled with npm (an app that installed the package has no node-gyp
 * of its own).
 */
function nodeGyp() {
  const tries = [
    () => createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'),
    () => createRequire(path.join(process.cwd(), 'noop.js')).resolve('node-gyp/bin/node-gyp.js'),
  ];
  for (const attempt of tries) {
    try {
      return attempt();
    } catch {
      // try the next place
    }
  }
  const bundled = [
    process.env.npm_config_node_gyp,
    path.join(
      path.dirname(process.execPath),
      '..',
      'lib',
      'node_modules',
      'npm',
      'node_modules',
      'node-gyp',
      'bin',
      'node-gyp.js',
    ),
  ].find(candidate => candidate && existsSync(candidate));
  if (bundled) return bundled;
  throw new Error('node-gyp not found: `npm install --no-save node-gyp` next to nest-herald');
}

/** binding.gyp asks node for node-addon-api's headers: fail early and clearly without them. */
function checkAddonApi() {
  try {
    createRequire(path.join(nativeDir, 'noop.js')).resolve('node-addon-api');
  } catch {
    throw new Error(
      'node-addon-api (headers, a devDependency of nest-herald) not found: `npm install --no-save node-addon-api` in your app',
    );
  }
}

function buildAddon() {
  const sources = ['host.cc', 'queue.h', 'pools.h', 'herald_ffi.h', 'binding.gyp'].map(file =>
    path.join(nativeDir, file),
  );
  if (!stale(addon, [...sources, self])) return false;
  checkAddonApi();
  run(process.execPath, [nodeGyp(), 'rebuild', ...nodedirArgs()], { cwd: nativeDir });
  return true;
}

/** Copies the built addon, stripped of debug symbols, to `target` (written aside, then renamed). */
function shipAs(target) {
  const partial = `${target}.${process.pid}.tmp`;
  copyFileSync(addon, partial);
  const strip = spawnSync('strip', ['--strip-unneeded', partial], { stdio: 'inherit' });
  if (strip.error)
    console.warn(`build-native: strip unavailable, shipping unstripped (${strip.error.message})`);
  renameSync(partial, target);
}

/**
 * The shipped binaries, in node-gyp-build's naming (it prefers an `abi` tag
 * matching the running Node over `napi`):
 * - `node.abi<N>.glibc.node`: the addon as built here, for this Node's ABI
 *   only: its answer slabs use V8's own API (one backing store per slab, so
 *   V8 runs no full GCs over them), which is not ABI-stable across Node
 *   majors;
 * - `node.napi.glibc.node`: built again with HERALD_FFI_NAPI_ONLY, N-API
 *   alone, for every other Node version.
 * Then the local build is rebuilt as it was.
 */
function copyPrebuild() {
  const dir = path.join(nativeDir, 'prebuilds', `${process.platform}-${process.arch}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const abi = path.join(dir, `node.abi${process.versions.modules}.glibc.node`);
  shipAs(abi);
  const gyp = [nodeGyp(), 'rebuild', ...nodedirArgs()];
  const portable = path.join(dir, 'node.napi.glibc.node');
  try {
    run(process.execPath, gyp, {
      cwd: nativeDir,
      env: { ...process.env, CPPFLAGS: `${process.env.CPPFLAGS ?? ''} -DHERALD_FFI_NAPI_ONLY` },
    });
    shipAs(portable);
  } finally {
    run(process.execPath, gyp, { cwd: nativeDir });
  }
  return [abi, portable];
}

function buildFixtures() {
  if (!existsSync(fixturesDir)) return 0;
  const out = path.join(fixturesDir, 'build');
  mkdirSync(out, { recursive: true });
  const header = path.join(nativeDir, 'herald_ffi.h');
  let built = 0;
  for (const file of readdirSync(fixturesDir).filter(name => name.endsWith('.c'))) {
    const source = path.join(fixturesDir, file);
    const library = path.join(out, `libherald_${path.basename(file, '.c').replace(/-/g, '_')}.so`);
    if (!stale(library, [source, header, self])) continue;
    // Host symbols stay undefined: they are resolved from the global scope
    // at load time, as for any runtime written for the original.
    // Written aside and renamed, so a test process never loads half a file.
    const partial = `${library}.${process.pid}.tmp`;
    run(process.env.CC ?? 'cc', [
      '-O2',
      '-Wall',
      '-shared',
      '-fPIC',
      '-pthread',
      `-I${nativeDir}`,
      '-o',
      partial,
      source,
    ]);
    renameSync(partial, library);
    built++;
  }
  // Programs the tests and benchmarks run (test/fixtures/ffi/bin/*.c), e.g.
  // the socket echo server of bench:ffi.
  const binDir = path.join(fixturesDir, 'bin');
  const programs = existsSync(binDir)
    ? readdirSync(binDir).filter(name => name.endsWith('.c'))
    : [];
  for (const file of programs) {
    const source = path.join(binDir, file);
    const program = path.join(out, path.basename(file, '.c'));
    if (!stale(program, [source, self])) continue;
    const partial = `${program}.${process.pid}.tmp`;
    run(process.env.CC ?? 'cc', ['-O2', '-Wall', '-o', partial, source]);
    renameSync(partial, program);
    built++;
  }
  return built;
}

/**
 * Test files running in parallel may each ask for a build: one builds, the
 * others wait for it and then find everything up to date.
 */
function withLock(work) {
  const lock = path.join(nativeDir, '.build-lock');
  const deadline = Date.now() + 5 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
      // A lock older than the deadline was left by a killed build.
      if (Date.now() - mtime(lock) > 5 * 60_000) rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`${lock} is held for too long`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
  try {
    return work();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

try {
  const [addonBuilt, fixtures, shipped] = withLock(() => [
    buildAddon(),
    buildFixtures(),
    prebuild ? copyPrebuild() : undefined,
  ]);
  if (shipped) {
    const names = shipped.map(file => path.relative(root, file)).join(', ');
    console.log(`build-native: prebuilt binaries ${names}`);
  }
  if (addonBuilt || fixtures) {
    console.log(
      `build-native: ${addonBuilt ? 'addon built' : 'addon up to date'}, ${fixtures} test runtime(s) built`,
    );
  }
} catch (error) {
  console.error(
    `build-native: cannot build the FFI addon (nest-herald/ffi needs a C++ compiler, make and python3 for node-gyp): ${error.message}`,
  );
  process.exit(1);
}

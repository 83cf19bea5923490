#!/usr/bin/env node
// Builds the FFI runtimes written in other languages:
//   python  the Python shim lib/ffi/shims/python -> lib/ffi/shims/build/libherald_python3.so
//           (shipped as source; needs a C compiler and python3-config, i.e.
//           the libpython headers: apt-get install python3-dev)
//   rust    test/fixtures/ffi/rust/echo.rs -> test/fixtures/ffi/build/libherald_rust_echo.so (rustc)
//   go      test/fixtures/ffi/go/echo.go   -> test/fixtures/ffi/build/libherald_go_echo.so (go)
// `node scripts/build-ffi-runtimes.mjs [python] [rust] [go]` (default: all
// three). A missing toolchain fails the build, except Go with `--go-optional`:
// then one loud line says Go is absent and its runtime is not built. Prints
// a JSON summary as its last line. Rebuilds only what is older than its
// sources; one build at a time (parallel test files share it).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const self = fileURLToPath(import.meta.url);
const header = path.join(root, 'lib', 'ffi', 'native', 'herald_ffi.h');
const args = process.argv.slice(2);
const goOptional = args.includes('--go-optional');
const wanted = args.filter(arg => !arg.startsWith('--'));
const targets = wanted.length > 0 ? wanted : ['python', 'rust', 'go'];

const mtime = file => (existsSync(file) ? statSync(file).mtimeMs : 0);
const stale = (output, inputs) =>
  !existsSync(output) || inputs.some(input => mtime(input) > mtime(output));

function run(command, commandArgs, options = {}) {
  const result = spawnSync(command, commandArgs, { encoding: 'utf8', ...options });
  if (result.error) throw new Error(`${command}: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(
      `${command} ${commandArgs.join(' ')} exited with ${result.status}\n${result.stderr ?? ''}`,
    );
  }
  return result.stdout ?? '';
}

const has = tool => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

/** Builds `output` with `build(partial)`, written aside and renamed so no process loads half a file. */
function produce(output, inputs, build) {
  if (!stale(output, [...inputs, self])) return false;
  mkdirSync(path.dirname(output), { recursive: true });
  const partial = `${output}.${process.pid}.tmp`;
  build(partial);
  renameSync(partial, output);
  return true;
}

const builders = {
  python() {
    const source = path.join(root, 'lib', 'ffi', 'shims', 'python', 'herald_python3.c');
    const output = path.join(root, 'lib', 'ffi', 'shims', 'build', 'libherald_python3.so');
    const config = process.env.PYTHON_CONFIG ?? 'python3-config';
    if (!has(config))
      throw new Error(`${config} not found: install the libpython headers (python3-dev)`);
    const built = produce(output, [source, header], partial => {
      const includes = run(config, ['--includes']).trim().split(/\s+/);
      // --embed: link libpython itself (3.8+); its rpath comes with --ldflags.
      const ldflags = run(config, ['--ldflags', '--embed']).trim().split(/\s+/);
      run(process.env.CC ?? 'cc', [
        '-O2',
        '-Wall',
        '-shared',
        '-fPIC',
        '-pthread',
        ...includes,
        '-o',
        partial,
        source,
        ...ldflags,
      ]);
    });
    return { output, built };
  },
  rust() {
    const source = path.join(root, 'test', 'fixtures', 'ffi', 'rust', 'echo.rs');
    const output = path.join(root, 'test', 'fixtures', 'ffi', 'build', 'libherald_rust_echo.so');
    if (!has('rustc')) throw new Error('rustc not found: install Rust (https://rustup.rs)');
    const built = produce(output, [source], partial =>
      run('rustc', ['--edition', '2021', '-O', '--crate-type', 'cdylib', '-o', partial, source]),
    );
    return { output, built };
  },
  go() {
    const source = path.join(root, 'test', 'fixtures', 'ffi', 'go', 'echo.go');
    const output = path.join(root, 'test', 'fixtures', 'ffi', 'build', 'libherald_go_echo.so');
    if (!has('go')) {
      if (!goOptional) throw new Error('go not found: install a Go toolchain (https://go.dev/dl)');
      console.error(
        'build-ffi-runtimes: NO GO TOOLCHAIN on PATH: the Go runtime is not built and its tests do not run',
      );
      return { output: null, built: false, absent: true };
    }
    const built = produce(output, [source], partial => {
      run('go', ['build', '-buildmode=c-shared', '-o', partial, source], {
        cwd: path.dirname(source),
        env: { ...process.env, GO111MODULE: 'off', CGO_ENABLED: '1' },
      });
      // c-shared also writes a header next to the library: not needed.
      rmSync(partial.replace(/\.tmp$/, '.h'), { force: true });
    });
    return { output, built };
  },
};

function withLock(work) {
  const lock = path.join(root, 'test', 'fixtures', 'ffi', '.runtimes-lock');
  const deadline = Date.now() + 5 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock, { recursive: false });
      break;
    } catch (error) {
      if (error.code === 'ENOENT') {
        // An installed package has no test/: lock next to the shim instead.
        return work();
      }
      if (error.code !== 'EEXIST') throw error;
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
  const summary = withLock(() =>
    Object.fromEntries(
      targets.map(target => {
        if (!builders[target]) throw new Error(`unknown runtime "${target}" (python, rust, go)`);
        return [target, builders[target]()];
      }),
    ),
  );
  console.log(JSON.stringify(summary));
} catch (error) {
  console.error(`build-ffi-runtimes: ${error.message}`);
  process.exit(1);
}

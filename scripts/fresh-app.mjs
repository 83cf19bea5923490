// A fresh app outside the repository with the packed nest-herald installed
// from its tarball, as a user gets it: shared by the README, entry-point and
// package checks (scripts/check-*.mjs). The app's other dependencies come
// from the npm registry at the versions this checkout's node_modules holds;
// the app directory is kept in os.tmpdir() under a hash of those versions, so
// a later run only reinstalls the tarball (npm's cache serves the rest).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** `--tarball <file>` from the command line, else a fresh `npm run package` into a temp dir. */
export function packedTarball(argv = process.argv.slice(2)) {
  const at = argv.indexOf('--tarball');
  if (at >= 0) return path.resolve(argv[at + 1]);
  const destination = mkdtempSync(path.join(os.tmpdir(), 'nest-herald-pack-'));
  const out = execFileSync(
    process.execPath,
    [path.join(ROOT, 'scripts', 'pack.mjs'), '--destination', destination],
    {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return out.trim().split('\n').at(-1);
}

/** The version of `name` installed in this checkout (what the tests ran against). */
export function projectVersion(name) {
  return JSON.parse(readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8'))
    .version;
}

const npmFlags = ['--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'];

/**
 * An app directory with exactly `deps` (names; versions from this checkout)
 * and nest-herald from `tarball`. Returns its path.
 */
export function freshApp(label, deps, tarball) {
  const dependencies = Object.fromEntries(
    [...deps].sort().map(name => [name, projectVersion(name)]),
  );
  const hash = createHash('sha256')
    .update(JSON.stringify({ dependencies, node: process.version }))
    .digest('hex')
    .slice(0, 12);
  const dir = path.join(os.tmpdir(), `nest-herald-${label}-${hash}`);
  const stamp = path.join(dir, '.installed');
  if (!existsSync(stamp)) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      path.join(dir, 'package.json'),
      JSON.stringify(
        { name: `herald-${label}`, version: '1.0.0', private: true, type: 'module', dependencies },
        null,
        2,
      ),
    );
    execFileSync('npm', ['install', ...npmFlags], { cwd: dir, stdio: 'inherit', timeout: 300_000 });
    writeFileSync(stamp, '');
  }
  rmSync(path.join(dir, 'node_modules', 'nest-herald'), { recursive: true, force: true });
  execFileSync('npm', ['install', '--no-save', ...npmFlags, tarball], {
    cwd: dir,
    stdio: 'inherit',
    timeout: 300_000,
  });
  return dir;
}

/**
 * The tsconfig.json `nest new` writes for Nest 12 (@nestjs/schematics 12,
 * application/files/ts-esm: "type": "module", strict on), minus
 * `vitest/globals` in `types` (the apps here have no tests).
 */
export const nestTsconfig = {
  compilerOptions: {
    module: 'nodenext',
    moduleResolution: 'nodenext',
    resolvePackageJsonExports: true,
    esModuleInterop: true,
    isolatedModules: true,
    declaration: true,
    removeComments: true,
    emitDecoratorMetadata: true,
    experimentalDecorators: true,
    allowSyntheticDefaultImports: true,
    target: 'ES2023',
    sourceMap: true,
    outDir: './dist',
    incremental: true,
    skipLibCheck: true,
    strict: true,
    strictPropertyInitialization: false,
    types: ['node'],
  },
  include: ['src'],
};

/**
 * Runs tsc in `dir`: with Nest's default tsconfig (emitting dist/; unless
 * `emit` is false), then with `skipLibCheck: false`. Returns the failures'
 * output ('' when clean).
 */
export function compile(dir, { emit = true } = {}) {
  writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(nestTsconfig, null, 2));
  const tsc = path.join(dir, 'node_modules', 'typescript', 'bin', 'tsc');
  let failures = '';
  const runs = [['--skipLibCheck', 'false', '--noEmit']];
  if (emit) runs.unshift([]);
  for (const extra of runs) {
    try {
      execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json', '--pretty', 'false', ...extra], {
        cwd: dir,
        encoding: 'utf8',
        stdio: 'pipe',
      });
    } catch (error) {
      const label = extra.length ? 'with skipLibCheck: false' : "with Nest's default tsconfig";
      failures += `tsc ${label}:\n${error.stdout}${error.stderr}`;
    }
  }
  return failures;
}

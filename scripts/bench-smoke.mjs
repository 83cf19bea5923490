#!/usr/bin/env node
// npm run bench:smoke — every bench in smoke mode (BENCH_SMOKE=1: a fraction
// of a second per variant through the same code path), one after another,
// with the very command of its `bench:<name>` script. Fails on the first bench
// that exits non-zero, hangs past its time limit or does not end with its
// result line, naming it; so a broken bench fails CI.
// Usage: node scripts/bench-smoke.mjs [name ...]   (default: all of them)
// BENCH_SMOKE_TIMEOUT_S: the limit per bench (default 180 s).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const scripts = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).scripts;
const RATIO_LINE = /^herald\/\S+ = \d+\.\dx$/;
const BEFORE_AFTER_LINE = /^\S.* median \d+\.\d+x, per round /;
/** Each bench and the line it must end with: the headline ratio, or the leak check's verdict. */
const BENCHES = {
  local: RATIO_LINE,
  ipc: RATIO_LINE,
  pg: RATIO_LINE,
  redis: RATIO_LINE,
  ffi: RATIO_LINE,
  'ffi-leak': /^bench:ffi-leak: no leak( \(BENCH_SMOKE: .*\))?$/,
  microservices: RATIO_LINE,
  registry: /^goals met in \d+ of \d+ consecutive runs$/,
  'redis-recovery': /loaded -> first successful write:/,
  tiered: RATIO_LINE,
  // Another checkout's lib/ against this one's (BENCH_BASE); in smoke mode this checkout against itself.
  'bus-before-after': BEFORE_AFTER_LINE,
  'pg-before-after': BEFORE_AFTER_LINE,
  'redis-before-after': BEFORE_AFTER_LINE,
  // The load-independent probes (one JSON line each): pg's per-event figures, the registry's first pass.
  'pg-probe': /^\{"variant":"(herald|hub)",/,
  'registry-probe': /^\{"side":"emitter",/,
  // Issue 26: the telemetry compiled out (otel-strip.mjs refuses a hook it cannot fold) and compared.
  'otel-overhead': /^absent\/stripped, the dearest herald variant per bench: /,
};
const timeoutMs = Number(process.env.BENCH_SMOKE_TIMEOUT_S ?? 180) * 1000;
/** otel-overhead smokes every bench three times over (absent, stripped, sdk): a longer limit. */
const limitOf = name => (name === 'otel-overhead' ? 3 : 1) * timeoutMs;

const chosen = process.argv.slice(2);
for (const name of chosen) {
  if (!(name in BENCHES)) {
    console.error(
      `bench-smoke: no bench named ${JSON.stringify(name)} (${Object.keys(BENCHES).join(', ')})`,
    );
    process.exit(2);
  }
}

/** Runs one bench's script in smoke mode; resolves with why it failed, or undefined. */
function smoke(name) {
  const command = scripts[`bench:${name}`];
  if (!command) return Promise.resolve(`package.json has no script bench:${name}`);
  return new Promise(resolve => {
    // Its own process group, so a hung bench and its children can be killed together.
    const child = spawn('sh', ['-c', command], {
      cwd: root,
      env: { ...process.env, BENCH_SMOKE: '1' },
      stdio: ['ignore', 'pipe', 'inherit'],
      detached: true,
    });
    let output = '';
    child.stdout.on('data', chunk => {
      process.stdout.write(chunk);
      output += chunk;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      process.kill(-child.pid, 'SIGKILL');
    }, limitOf(name));
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const last = output.trimEnd().split('\n').at(-1) ?? '';
      if (timedOut) resolve(`did not finish within ${limitOf(name) / 1000} s (killed)`);
      else if (code !== 0) resolve(`exited with ${signal ?? `code ${code}`}`);
      else if (!BENCHES[name].test(last))
        resolve(`ended with ${JSON.stringify(last)}, not a line matching ${BENCHES[name]}`);
      else resolve(undefined);
    });
  });
}

const started = Date.now();
const times = [];
for (const name of chosen.length > 0 ? chosen : Object.keys(BENCHES)) {
  console.log(`\n=== bench-smoke: ${name} (${scripts[`bench:${name}`] ?? '?'})`);
  const t0 = Date.now();
  const failure = await smoke(name);
  const seconds = ((Date.now() - t0) / 1000).toFixed(1);
  if (failure) {
    console.error(`\nbench-smoke: FAILED: bench:${name} ${failure} (after ${seconds} s)`);
    process.exit(1);
  }
  times.push(`${name} ${seconds} s`);
}
console.log(
  `\nbench-smoke: all ${times.length} benches ran: ${times.join(', ')}; total ${((Date.now() - started) / 1000).toFixed(1)} s`,
);

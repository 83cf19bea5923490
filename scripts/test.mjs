#!/usr/bin/env node
// `npm test`: finds PostgreSQL and Redis (PG_URL / REDIS_URL, else the local
// defaults), starts throwaway ones from the local binaries when they are not
// reachable, builds what the tests need, then runs Jest with any arguments
// given. Never skips a transport: no server means one clear line and exit 1.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, chmodSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stateDir = path.join(os.tmpdir(), `herald-test-services-${process.pid}`);
const cleanups = [];

function which(binary) {
  const found = spawnSync('sh', ['-c', `command -v ${binary}`], { encoding: 'utf8' });
  if (found.status === 0) return found.stdout.trim();
  for (const dir of [
    '/usr/lib/postgresql/17/bin',
    '/usr/lib/postgresql/16/bin',
    '/usr/lib/postgresql/15/bin',
  ]) {
    if (existsSync(path.join(dir, binary))) return path.join(dir, binary);
  }
  return undefined;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Sends `request` over TCP and resolves true if the reply matches within 2 s. */
function probe(url, request, expect) {
  const { hostname, port } = new URL(url);
  return new Promise(resolve => {
    const socket = net.connect(Number(port), hostname || '127.0.0.1');
    const done = ok => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write(request));
    socket.once('data', chunk => done(expect(chunk)));
  });
}

async function redisReachable(url) {
  return probe(url, 'PING\r\n', chunk => chunk.toString().startsWith('+PONG'));
}

async function pgReachable(url) {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function startRedis() {
  const server = which('redis-server');
  if (!server) return undefined;
  const port = await freePort();
  const dir = path.join(stateDir, 'redis');
  mkdirSync(dir, { recursive: true });
  execFileSync(server, [
    '--daemonize',
    'yes',
    '--bind',
    '127.0.0.1',
    '--port',
    String(port),
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--pidfile',
    path.join(dir, 'redis.pid'),
  ]);
  const url = `redis://127.0.0.1:${port}`;
  cleanups.push(() =>
    spawnSync(which('redis-cli') ?? 'redis-cli', ['-p', String(port), 'shutdown', 'nosave']),
  );
  for (let i = 0; i < 100 && !(await redisReachable(url)); i++)
    await new Promise(r => setTimeout(r, 50));
  return url;
}

async function startPostgres() {
  const initdb = which('initdb');
  const pgCtl = which('pg_ctl');
  if (!initdb || !pgCtl) return undefined;
  const port = await freePort();
  const dir = path.join(stateDir, 'pg');
  mkdirSync(dir, { recursive: true });
  // PostgreSQL refuses to run as root: run it as the postgres user when we are root.
  const asUser = process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--'] : [];
  if (asUser.length) {
    chmodSync(stateDir, 0o777);
    execFileSync('chown', ['-R', 'postgres', dir]);
  }
  const run = args =>
    execFileSync(
      asUser[0] ?? args[0],
      asUser.length ? [...asUser.slice(1), ...args] : args.slice(1),
      { stdio: 'ignore' },
    );
  run([initdb, '-D', dir, '-A', 'trust', '-U', 'postgres']);
  run([
    pgCtl,
    '-D',
    dir,
    '-o',
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`,
    '-w',
    'start',
  ]);
  cleanups.push(() => run([pgCtl, '-D', dir, '-m', 'immediate', 'stop']));
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  return url;
}

function cleanup() {
  while (cleanups.length) {
    try {
      cleanups.pop()();
    } catch {
      // best effort: a throwaway server that is already gone is fine
    }
  }
  rmSync(stateDir, { recursive: true, force: true });
}

async function main() {
  const pgUrl = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const env = { ...process.env };

  if (await pgReachable(pgUrl)) env.PG_URL = pgUrl;
  else {
    const started = await startPostgres().catch(() => undefined);
    if (!started || !(await pgReachable(started))) {
      console.error(
        `npm test: PostgreSQL is not reachable at ${pgUrl} and none could be started: install PostgreSQL (apt-get install postgresql) or set PG_URL.`,
      );
      return 1;
    }
    console.log(`npm test: started a throwaway PostgreSQL at ${started}`);
    env.PG_URL = started;
  }

  if (await redisReachable(redisUrl)) env.REDIS_URL = redisUrl;
  else {
    const started = await startRedis().catch(() => undefined);
    if (!started || !(await redisReachable(started))) {
      console.error(
        `npm test: Redis is not reachable at ${redisUrl} and none could be started: install Redis (apt-get install redis-server) or set REDIS_URL.`,
      );
      return 1;
    }
    console.log(`npm test: started a throwaway Redis at ${started}`);
    env.REDIS_URL = started;
  }

  // The CommonJS smoke test and spawned workers load the built package.
  const build = spawnSync('npm', ['run', '--silent', 'build'], {
    cwd: root,
    stdio: 'inherit',
    env,
  });
  if (build.status !== 0) return build.status ?? 1;

  const jest = path.join(root, 'node_modules', 'jest', 'bin', 'jest.js');
  const summary = path.join(stateDir, 'jest-summary.json');
  mkdirSync(stateDir, { recursive: true });
  const args = process.argv.slice(2);
  const child = spawn(process.execPath, [jest, ...args], {
    cwd: root,
    stdio: 'inherit',
    env: { ...env, HERALD_JEST_SUMMARY: summary },
  });
  const forward = signal => child.kill(signal);
  process.on('SIGINT', forward).on('SIGTERM', forward);
  const code = await new Promise(resolve => child.once('exit', code => resolve(code ?? 1)));
  // One plain closing line that any CI can read.
  try {
    const result = JSON.parse(readFileSync(summary, 'utf8'));
    const skipped = result.numPendingTests + result.numTodoTests;
    console.log(
      `jest: ${result.numPassedTests} passed, ${result.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ''}`,
    );
    if (result.numTotalTests === 0) return 1;
  } catch {
    console.log('jest: 0 passed, 1 failed');
    return code || 1;
  }
  return code;
}

main()
  .then(code => {
    cleanup();
    process.exit(code);
  })
  .catch(error => {
    console.error(`npm test: ${error.stack ?? error}`);
    cleanup();
    process.exit(1);
  });

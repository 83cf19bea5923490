// node --import ./scripts/register-ts.mjs bench/redis-recovery.bench.ts
//
// How long a Redis restart costs the StreamPublisher's writes: a private
// redis-server (appendonly, on a free port, in a temp dir) holding a dataset
// big enough that reloading it shows `LOADING` is SIGKILLed and started
// again at once; a publishAndWait issued right after the kill is timed until
// it resolves. Two figures per restart:
//   kill -> write    from the SIGKILL to the first successful write
//   answer -> write  from the moment the new server first answers a
//                    connection (LOADING or not) to that write
//   loaded -> write  from the moment it first answers PING with PONG
//                    (its data loaded) to that write: what the client adds
// Median (and min/max) of BENCH_RESTARTS (default 20) restarts.
// BENCH_KEYS: keys loaded before the restarts (default 300000, DEBUG POPULATE).
// BENCH_SMOKE=1: 3 restarts, 2000 keys (a check that the script runs).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { silentLogger } from '../lib/index.js';
import { StreamPublisher } from '../lib/redis/index.js';
import { freePort } from '../test/helpers/free-port.js';

const SMOKE = process.env.BENCH_SMOKE === '1';
const RESTARTS = Number(process.env.BENCH_RESTARTS ?? (SMOKE ? 3 : 20));
const KEYS = Number(process.env.BENCH_KEYS ?? (SMOKE ? 2000 : 300_000));

/** Resolves with the first reply line of a PING, or undefined when nobody answers. */
function ping(port: number): Promise<string | undefined> {
  return new Promise(resolve => {
    const socket = net.connect(port, '127.0.0.1');
    const done = (line?: string): void => {
      socket.destroy();
      resolve(line);
    };
    socket.setTimeout(1000, () => done());
    socket.once('error', () => done());
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', chunk => done(chunk.toString().split('\r\n')[0]));
  });
}

async function until<T>(probe: () => Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise(resolve => setTimeout(resolve, 1));
  }
}

class Server {
  child?: ChildProcess;
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'herald-recovery-'));
  constructor(readonly port: number) {}

  start(): void {
    this.child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--appendonly',
        'yes',
        '--save',
        '',
        '--enable-debug-command',
        'yes',
        '--protected-mode',
        'no',
      ],
      { stdio: 'ignore' },
    );
  }

  kill(): Promise<void> {
    const child = this.child!;
    return new Promise(resolve => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function main(): Promise<void> {
  const server = new Server(await freePort());
  server.start();
  await until(async () => ((await ping(server.port)) === '+PONG' ? true : undefined), 'redis');
  const admin = new Redis({ port: server.port, lazyConnect: true });
  await admin.connect();
  await admin.call('DEBUG', 'POPULATE', String(KEYS), 'bench', '100');
  await admin.bgrewriteaof();
  await until(async () => {
    const info = await admin.info('persistence');
    return /aof_rewrite_in_progress:0/.test(info) && /aof_rewrite_scheduled:0/.test(info)
      ? true
      : undefined;
  }, 'AOF rewrite');
  admin.disconnect();

  const publisher = new StreamPublisher<string>({
    url: `redis://127.0.0.1:${server.port}`,
    stream: 'recovery',
    logger: silentLogger,
    encode: value => ['v', value],
  });
  await publisher.publishAndWait('warm-up');
  const killToWrite: number[] = [];
  const answerToWrite: number[] = [];
  const loadedToWrite: number[] = [];
  let sawLoading = 0;
  for (let i = 0; i < RESTARTS; i++) {
    await server.kill();
    const killed = performance.now();
    server.start();
    const written = publisher.publishAndWait(`after-${i}`).then(() => performance.now());
    const first = await until(async () => ping(server.port), 'first answer');
    const answered = performance.now();
    if (first.startsWith('-LOADING')) sawLoading++;
    await until(async () => ((await ping(server.port)) === '+PONG' ? true : undefined), 'loaded');
    const loaded = performance.now();
    const at = await written;
    killToWrite.push(at - killed);
    answerToWrite.push(at - answered);
    loadedToWrite.push(Math.max(0, at - loaded));
  }
  await publisher.close();
  await server.kill();
  rmSync(server.dir, { recursive: true, force: true });
  const fmt = (values: number[]): string =>
    `median ${median(values).toFixed(0)} ms (min ${Math.min(...values).toFixed(0)}, max ${Math.max(...values).toFixed(0)})`;
  console.log(`redis recovery: ${RESTARTS} restarts, ${KEYS} keys reloaded each time`);
  console.log(`  first answer was LOADING in ${sawLoading} of ${RESTARTS}`);
  console.log(`  kill -> first successful write:   ${fmt(killToWrite)}`);
  console.log(`  answer -> first successful write: ${fmt(answerToWrite)}`);
  console.log(`  loaded -> first successful write: ${fmt(loadedToWrite)}`);
}

main().catch(error => {
  console.error(error);
  process.exit(1);
});

// Load-independent counts for benches run under
// `valgrind --tool=callgrind --instr-atstart=no`: the bench switches
// callgrind's instrumentation on for its timed part only.
import { spawn } from 'node:child_process';

/**
 * BENCH_CALLGRIND=1: turns callgrind's instrumentation of this process on or
 * off (`callgrind_control -i`); without it, nothing.
 */
export function callgrindInstrumentation(state: 'on' | 'off'): Promise<void> {
  return callgrindControl(['-i', state]);
}

/** BENCH_CALLGRIND=1: writes the counts so far to a dump of their own (`callgrind_control -d`). */
export function callgrindDump(): Promise<void> {
  return callgrindControl(['-d']);
}

/**
 * `callgrind_control <args> <this pid>`, only with BENCH_CALLGRIND=1.
 * Asynchronous on purpose: valgrind takes the request while this process
 * runs, and a process blocked in a synchronous spawn never would.
 */
async function callgrindControl(args: string[]): Promise<void> {
  if (!process.env.BENCH_CALLGRIND) return;
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn('callgrind_control', [...args, String(process.pid)], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', resolve);
  });
  if (code !== 0) throw new Error(`callgrind_control ${args.join(' ')} exited with ${code}`);
}

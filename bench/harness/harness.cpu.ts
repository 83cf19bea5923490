// CPU accounting for benches: user + system time of every Node process of a
// run, from process.resourceUsage(). Child processes answer a request over
// their IPC channel with their own total, so the parent can take the
// difference across a round; servers (PostgreSQL, Redis) are not counted.
import { readFileSync } from 'node:fs';

/** User + system CPU time this process (all its threads) has used, in µs. */
export function cpuMicros(): number {
  const usage = process.resourceUsage();
  return usage.userCPUTime + usage.systemCPUTime;
}

/** The message type of a CPU request and of its answer. */
export const CPU_REQUEST = 'bench-cpu';

interface CpuAnswer {
  type: typeof CPU_REQUEST;
  micros: number;
}

/**
 * The child side, as plain CommonJS-compatible JavaScript for children started
 * with `node -e` (they cannot import TypeScript): answers a CPU request with
 * cpuMicros().
 */
export const ANSWER_CPU_JS = `process.on('message', m => {
  if (m && m.type === '${CPU_REQUEST}') {
    const u = process.resourceUsage();
    process.send({ type: '${CPU_REQUEST}', micros: u.userCPUTime + u.systemCPUTime });
  }
});`;

/** The child side for TypeScript children: answers every CPU request with cpuMicros(). */
export function answerCpuRequests(): void {
  process.on('message', (message: { type?: string }) => {
    if (message?.type === CPU_REQUEST)
      process.send!({ type: CPU_REQUEST, micros: cpuMicros() } satisfies CpuAnswer);
  });
}

/** What askCpuMicros needs of a child: a ChildProcess or a cluster Worker. */
export interface CpuReporter {
  send(message: unknown): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

/** The parent side: a child's total CPU time so far, in µs. */
export function askCpuMicros(child: CpuReporter, timeoutMs = 10_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off('message', listener);
      reject(new Error(`a child process did not report its CPU time within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (message: unknown): void => {
      const answer = message as Partial<CpuAnswer> | undefined;
      if (answer?.type !== CPU_REQUEST || typeof answer.micros !== 'number') return;
      clearTimeout(timer);
      child.off('message', listener);
      resolve(answer.micros);
    };
    child.on('message', listener);
    child.send({ type: CPU_REQUEST });
  });
}

/**
 * CPU time of this process's main (JavaScript) thread alone, in µs, from
 * `/proc/self/task/<pid>/schedstat` (Linux); elsewhere the whole process's
 * (cpuMicros). Without the compiler's and the collector's background
 * threads: what a short pass costs the thread that runs it, the figure
 * closest to its wall time on an idle machine.
 */
export function mainThreadCpuMicros(): number {
  try {
    return (
      Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1000
    );
  } catch {
    return cpuMicros();
  }
}

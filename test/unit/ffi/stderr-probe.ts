import { spawnNode } from '../../helpers/processes.js';

/** What the probe printed: its `RESULT` object and everything on its stderr. */
export interface ProbeOutcome<T> {
  result: T;
  stderr: string;
}

/**
 * Runs test/fixtures/ffi/stderr-probe.ts with `probe` in a process of its
 * own: native code writes straight to fd 2, which no Jest capture sees, so a
 * case that expects such a line runs apart and asserts on it.
 */
export async function runProbe<T>(probe: object): Promise<ProbeOutcome<T>> {
  const child = spawnNode('test/fixtures/ffi/stderr-probe.ts', { args: [JSON.stringify(probe)] });
  const { code } = await child.exited;
  await child.closed;
  const line = child.stdoutLines.find(l => l.startsWith('RESULT '));
  if (!line) {
    throw new Error(`stderr-probe exited ${code} without a result:\n${child.lines.join('\n')}`);
  }
  return {
    result: JSON.parse(line.slice('RESULT '.length)) as T,
    stderr: child.stderrLines.join('\n'),
  };
}

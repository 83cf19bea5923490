import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { waitFor } from './wait-for.js';

export const ROOT = path.resolve(__dirname, '..', '..');
const REGISTER = path.join(ROOT, 'scripts', 'register-ts.mjs');

/** A spawned Node process whose output lines are kept for assertions. */
export class ChildHandle {
  /** stdout and stderr lines, in arrival order. */
  readonly lines: string[] = [];
  /** stdout lines alone. */
  readonly stdoutLines: string[] = [];
  /** stderr lines alone (native code writing to fd 2 shows up here). */
  readonly stderrLines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once the process exited and its stdout and stderr were read to the end. */
  readonly closed: Promise<void>;
  constructor(readonly child: ChildProcess) {
    const collector = (own: string[]): ((chunk: Buffer) => void) => {
      let buffered = '';
      return chunk => {
        buffered += chunk.toString('utf8');
        const parts = buffered.split('\n');
        buffered = parts.pop() ?? '';
        own.push(...parts);
        this.lines.push(...parts);
      };
    };
    child.stdout?.on('data', collector(this.stdoutLines));
    child.stderr?.on('data', collector(this.stderrLines));
    this.closed = new Promise(resolve => child.once('close', () => resolve()));
    this.exited = new Promise(resolve =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Waits for an output line matching `pattern`; returns it. */
  waitForLine(pattern: RegExp | string, timeoutMs = 20_000): Promise<string> {
    const matches = (line: string): boolean =>
      typeof pattern === 'string' ? line.includes(pattern) : pattern.test(line);
    return waitFor(() => this.lines.find(matches), {
      timeoutMs,
      message: `a line matching ${pattern} from pid ${this.child.pid}; got:\n${this.lines.slice(-20).join('\n')}`,
    });
  }

  count(pattern: RegExp | string): number {
    return this.lines.filter(line =>
      typeof pattern === 'string' ? line.includes(pattern) : pattern.test(line),
    ).length;
  }

  /** Sends a line to the child's stdin. */
  send(line: string): void {
    this.child.stdin?.write(line + '\n');
  }

  /** SIGKILL, then waits for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    await this.exited;
  }
}

const children = new Set<ChildHandle>();

/**
 * Runs a TypeScript (or JavaScript) file in a new Node process, with the
 * project's swc loader so decorators and their metadata work.
 */
export function spawnNode(
  file: string,
  options: { args?: string[]; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): ChildHandle {
  const script = file.startsWith('file:') ? fileURLToPath(file) : path.resolve(ROOT, file);
  const child = spawn(
    process.execPath,
    ['--enable-source-maps', '--import', REGISTER, script, ...(options.args ?? [])],
    {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  const handle = new ChildHandle(child);
  children.add(handle);
  void handle.exited.then(() => children.delete(handle));
  return handle;
}

/** SIGKILLs every child this test file spawned (call in afterAll/afterEach). */
export async function killAllChildren(): Promise<void> {
  await Promise.all([...children].map(child => child.kill()));
}

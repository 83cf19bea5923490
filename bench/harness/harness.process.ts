// A bench variant's own Node process, seen from the parent: forked from a
// bench file with an environment variable naming the variant, answering
// `{ type }` requests one at a time over the IPC channel (bench:local's and
// bench:redis's process per variant), and the child's side of it.
import { fork } from 'node:child_process';

/** A reply the child sends; `error` carries its failure, rethrown by {@link VariantProcess.ask}. */
export type ProcessReply = { type: string } | { type: 'error'; message: string };

/** The parent's handle on a variant's process. */
export interface VariantProcess<Request extends { type: string }, Reply extends ProcessReply> {
  /** Sends one request and waits for its reply (rejects with the child's error, or if it exits). */
  ask(type: Request['type']): Promise<Reply>;
  /** Asks it to close (`{ type: 'close' }`), then waits for it to exit (SIGKILL after 5 s). */
  close(): Promise<void>;
}

/**
 * Forks `file` with `env`=`name` and `execArgv`, and waits for its first
 * reply (`ready`).
 */
export async function forkVariant<Request extends { type: string }, Reply extends ProcessReply>(
  file: string,
  env: string,
  name: string,
  execArgv: string[] = process.execArgv,
): Promise<VariantProcess<Request, Reply>> {
  const child = fork(file, [], {
    execArgv,
    env: { ...process.env, [env]: name },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', code => reject(new Error(`${name}'s process exited (${code})`))),
  );
  exited.catch(() => undefined);
  const next = (): Promise<Reply> =>
    Promise.race([
      new Promise<Reply>(resolve => child.once('message', m => resolve(m as Reply))),
      exited,
    ]).then(reply => {
      if (reply.type === 'error') {
        throw new Error(`${name}: ${(reply as { message?: string }).message ?? 'failed'}`);
      }
      return reply;
    });
  await next(); // ready
  return {
    ask(type) {
      const answer = next();
      child.send({ type });
      return answer;
    },
    async close() {
      if (child.exitCode === null && child.connected) {
        const answer = next();
        child.send({ type: 'close' });
        await answer.catch(() => undefined);
      }
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise(resolve => child.once('exit', resolve));
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await gone;
        clearTimeout(timer);
      }
    },
  };
}

/**
 * The child side: answers each request of the parent with what `handle`
 * returns (its failure as an `error` reply, with the stack), after saying
 * `ready`; a `close` request's reply is the last (the channel is closed
 * after it), and the process exits once the parent is gone.
 */
export function serveRequests<Request extends { type: string }, Reply extends ProcessReply>(
  handle: (request: Request) => Promise<Reply>,
): void {
  const reply = (message: ProcessReply): void => void process.send!(message);
  process.on('message', (request: Request) => {
    handle(request).then(
      answer => {
        reply(answer);
        if (request.type === 'close') process.disconnect();
      },
      (error: unknown) =>
        reply({
          type: 'error',
          message: error instanceof Error ? (error.stack ?? error.message) : String(error),
        }),
    );
  });
  // The parent gone (or done with this process): nothing is left to answer.
  process.once('disconnect', () => process.exit(0));
  reply({ type: 'ready' });
}

/** The collector exposed by --expose-gc, if it is. */
const gc = (globalThis as { gc?: (options?: { type: 'minor' | 'major' }) => void }).gc;

/** The child side: settles its heap, two full collections and a turn for their finalizers. */
export async function settled(): Promise<void> {
  gc?.();
  await new Promise(resolve => setImmediate(resolve));
  gc?.();
}

/** The child side: empties the young generation (what the warm-up left there), nothing else. */
export function nurseryEmptied(): void {
  gc?.({ type: 'minor' });
}

import { TaskRunner } from '../../common/task-runner.js';
import type { StreamMessage } from './stream.entry.js';

/**
 * The callback form of a handler, for callers that settle later without a
 * promise (the transport settles when its bus does): call `done()` once on
 * success, `done(error)` on failure. A throw counts as `done(error)`.
 * @publicApi
 */
export type StreamSettlingHandler = (
  message: StreamMessage,
  done: (error?: unknown) => void,
) => void;

/** One handler call to make, and where its outcome goes. */
export interface Task {
  readonly message: StreamMessage;
  readonly done: (error?: unknown) => void;
}

/** A failure is never `undefined` (that means success to `done`). */
export function failure(error: unknown): unknown {
  return error === undefined ? new Error('handler failed with undefined') : error;
}

/**
 * Runs handler calls at most `concurrency` at a time, in arrival order, on
 * the one {@link TaskRunner}; a call settles once, through `done` or a
 * throw. {@link whenIdle} resolves once nothing runs or waits (shutdown
 * waits on it, bounded).
 */
export class TaskPool {
  private readonly runner: TaskRunner<Task>;

  constructor(
    concurrency: number,
    private readonly handler: () => StreamSettlingHandler | undefined,
  ) {
    this.runner = new TaskRunner({ concurrency, execute: task => this.invoke(task) });
  }

  /** Handler calls running now. */
  get running(): number {
    return this.runner.running;
  }

  /** Handler calls running or waiting. */
  get busy(): number {
    return this.runner.busy;
  }

  /** Runs a task now if a slot is free, else queues it (in arrival order). */
  enqueue(task: Task): void {
    this.runner.submit(task);
  }

  /** Resolves once nothing runs or waits. */
  whenIdle(): Promise<void> {
    return this.runner.whenIdle();
  }

  /** Calls the handler; the task ends when `done` is first called (a throw is `done(error)`). */
  private invoke(task: Task): false {
    let settled = false;
    const finish = (error?: unknown): void => {
      if (settled) return;
      settled = true;
      try {
        task.done(error);
      } finally {
        this.runner.finished();
      }
    };
    try {
      const handler = this.handler();
      if (!handler) throw new Error('no handler');
      handler(task.message, finish);
    } catch (error) {
      finish(failure(error));
    }
    return false;
  }
}

import { Fifo } from '../../common/fifo.js';
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
 * Runs handler calls at most `concurrency` at a time, in arrival order; a
 * call settles once, through `done` or a throw. {@link whenIdle} resolves
 * once nothing runs or waits (shutdown waits on it, bounded).
 */
export class TaskPool {
  private readonly tasks = new Fifo<Task>();
  private runningTasks = 0;
  /** Re-entrancy guard: handlers that settle synchronously would otherwise recurse once per queued task. */
  private pumping = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly concurrency: number,
    private readonly handler: () => StreamSettlingHandler | undefined,
  ) {}

  /** Handler calls running now. */
  get running(): number {
    return this.runningTasks;
  }

  /** Handler calls running or waiting. */
  get busy(): number {
    return this.runningTasks + this.tasks.length;
  }

  /** Runs a task now if a slot is free, else queues it (in arrival order). */
  enqueue(task: Task): void {
    if (this.runningTasks < this.concurrency && this.tasks.length === 0) this.invoke(task);
    else this.tasks.push(task);
  }

  /** Resolves once nothing runs or waits. */
  whenIdle(): Promise<void> {
    if (this.busy === 0) return Promise.resolve();
    return new Promise(resolve => this.idleWaiters.push(resolve));
  }

  private invoke(task: Task): void {
    this.runningTasks++;
    let settled = false;
    const finish = (error?: unknown): void => {
      if (settled) return;
      settled = true;
      this.runningTasks--;
      try {
        task.done(error);
      } finally {
        this.pump();
      }
    };
    try {
      const handler = this.handler();
      if (!handler) throw new Error('no handler');
      handler(task.message, finish);
    } catch (error) {
      finish(failure(error));
    }
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.runningTasks < this.concurrency && this.tasks.length > 0)
        this.invoke(this.tasks.shift()!);
    } finally {
      this.pumping = false;
    }
    if (this.busy === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const waiter of waiters) waiter();
    }
  }
}

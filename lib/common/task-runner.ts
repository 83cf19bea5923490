import { Fifo } from './fifo.js';

/** How a {@link TaskRunner} runs its tasks. */
export interface TaskRunnerOptions<T> {
  /** Tasks running at once, at most (at least 1). */
  readonly concurrency: number;
  /**
   * Starts a task. @returns true when it already ended; false when it goes
   * on, and then its owner calls {@link TaskRunner.finished} exactly once
   * when it ends. A throw ends the task and reaches the caller of
   * `submit`/`start`/`finished`.
   */
  readonly execute: (task: T) => boolean;
  /** Called after each turn of the runner, when work may have ended (an idle check). */
  readonly onTurn?: () => void;
  /** Start holding: tasks wait until {@link TaskRunner.start}. */
  readonly holding?: boolean;
}

/**
 * The one handler runner (issue 15): tasks in arrival order, at most
 * `concurrency` at once; a task submitted while a slot is free and none
 * waits runs at once, in the caller's turn, with no queue and no promise.
 * It never recurses: a task submitted or finished from inside a running
 * task is taken up by the loop already running, so a long run of
 * synchronous tasks uses one stack frame, and arrival order holds.
 *
 * What a task is and how it ends belongs to the owner: the bus's
 * dispatcher runs an event through its handlers (ending when all settled),
 * the redis subscriber's pool one handler call with a `done` callback.
 */
export class TaskRunner<T> {
  /*
   * The state {@link claim} reads, public for an owner on a hot path that
   * claims inline (the bus's `postLocal` and its dispatcher's `runLocal`:
   * one function fewer for V8 to compile on a cold app's posting path).
   * Such an owner reads them, takes the slot exactly as `claim` does
   * (`pumping = true`, `active++`), and ends it with {@link release}, or
   * inline as {@link release} does (`active--`, `pumping = false`, then
   * {@link released} when {@link waiting} or {@link idleWaiters} say
   * something waits, else the turn's `onTurn`); nothing else writes them
   * from outside. Plain fields, not getters: a getter read on every post is
   * one more function V8 compiles alone.
   */
  active = 0;
  pumping = false;
  holding: boolean;
  /** Tasks waiting for a slot (or for {@link start}): the queue's length, as a field. */
  waiting = 0;
  /** `options.concurrency`. */
  readonly concurrency: number;
  /** {@link whenIdle}'s waiters (read by inline owners: non-empty means {@link released} has work). */
  readonly idleWaiters: (() => void)[] = [];
  private readonly queue = new Fifo<T>();

  constructor(private readonly options: TaskRunnerOptions<T>) {
    this.holding = options.holding === true;
    this.concurrency = options.concurrency;
  }

  /** Tasks started and not yet ended. */
  get running(): number {
    return this.active;
  }

  /** Tasks waiting for a slot (or for {@link start}). */
  get queued(): number {
    return this.waiting;
  }

  /** Tasks running or waiting. */
  get busy(): number {
    return this.active + this.waiting;
  }

  /** False until {@link start} when created holding. */
  get started(): boolean {
    return !this.holding;
  }

  /** Runs `task` now when a slot is free and nothing waits; else queues it. */
  submit(task: T): void {
    if (this.claim()) {
      let ended: boolean;
      try {
        ended = this.options.execute(task);
      } catch (error) {
        this.active--;
        this.pumping = false;
        throw error;
      }
      this.release(ended);
      return;
    }
    this.queue.push(task);
    this.waiting++;
    this.pump();
  }

  /**
   * Takes a slot for a task its owner runs itself, now, in the caller's
   * turn (what {@link submit} does through `execute`): true when a slot is
   * free, nothing waits and no task runs in this turn already; the owner
   * then runs the task and calls {@link release}, also when it throws.
   * False: the owner {@link submit}s the task instead.
   */
  claim(): boolean {
    if (this.pumping || this.holding || this.active >= this.concurrency || this.waiting !== 0) {
      return false;
    }
    this.pumping = true;
    this.active++;
    return true;
  }

  /** Ends a {@link claim}: `ended` as `execute` would answer (false: {@link finished} comes later). */
  release(ended: boolean): void {
    if (ended) this.active--;
    this.pumping = false;
    this.released();
  }

  /**
   * The rest of {@link release} once the owner gave the slot back inline:
   * what waits runs now, else the turn ends (`onTurn`, idle waiters).
   */
  released(): void {
    // Nothing waits (the common case): only the end of the turn, without
    // pump's loop, which V8 would otherwise compile into every caller.
    if (this.waiting !== 0) this.pump();
    else this.turned();
  }

  /** A task whose `execute` returned false has ended. */
  finished(): void {
    this.active--;
    this.pump();
  }

  /** Ends holding: what waited runs now, in arrival order. */
  start(): void {
    if (!this.holding) return;
    this.holding = false;
    this.pump();
  }

  /** Removes and returns every waiting task, oldest first (they will not run). */
  drain(): T[] {
    this.waiting = 0;
    return this.queue.drain();
  }

  /** Resolves once nothing runs and nothing waits. */
  whenIdle(): Promise<void> {
    if (this.busy === 0) return Promise.resolve();
    return new Promise(resolve => {
      this.idleWaiters.push(resolve);
    });
  }

  private begin(task: T): void {
    this.active++;
    let ended: boolean;
    try {
      ended = this.options.execute(task);
    } catch (error) {
      this.active--;
      throw error;
    }
    if (ended) this.active--;
  }

  private pump(): void {
    if (this.pumping || this.holding) return;
    this.pumping = true;
    try {
      while (this.active < this.concurrency && this.waiting > 0) {
        this.waiting--;
        this.begin(this.queue.shift()!);
      }
    } finally {
      this.pumping = false;
    }
    this.turned();
  }

  /** A turn ended: the owner's idle check, then this runner's idle waiters. */
  private turned(): void {
    this.options.onTurn?.();
    if (this.idleWaiters.length > 0 && this.busy === 0) {
      for (const waiter of this.idleWaiters.splice(0)) waiter();
    }
  }
}

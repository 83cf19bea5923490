import { BehaviorSubject, type Observable } from 'rxjs';
import { HeraldError } from './errors.js';
import type { HeraldLogger } from './logger.js';

/** What `status$` carries: the state, why it changed, and extra fields (e.g. `role`). */
export type StateChange<S extends string, X extends object = object> = {
  readonly state: S;
  /** Why the state changed, when it changed because of a failure or a decision. */
  readonly reason?: string;
} & Partial<X>;

/** A transition the class's table does not allow: a bug, never a runtime condition. @publicApi */
export class IllegalStateTransitionError extends HeraldError {
  constructor(
    readonly owner: string,
    readonly from: string,
    readonly to: string,
  ) {
    super(`${owner}: illegal state transition ${from} -> ${to}`);
  }
}

/**
 * The one lifecycle pattern (DESIGN.md "State"), after ioredis's `setStatus`:
 * a class declares its states as a union and the legal transitions as a
 * table, and changes state only through {@link setState}, which checks the
 * transition, logs it at debug and feeds `status$` — the one way status
 * reaches users. A same-state call with a new reason or extra fields is
 * published too (e.g. `reconnecting` with a new cause).
 */
export class StateMachine<S extends string, X extends object = object> {
  private current: StateChange<S, X>;
  private readonly subject: BehaviorSubject<StateChange<S, X>>;

  constructor(
    /** Names the owner in logs and errors, e.g. `redis subscriber events`. */
    readonly owner: string,
    initial: S,
    private readonly transitions: { readonly [K in S]: readonly S[] },
    private readonly logger?: HeraldLogger,
  ) {
    this.current = { state: initial } as StateChange<S, X>;
    this.subject = new BehaviorSubject(this.current);
  }

  /** The current state. */
  get state(): S {
    return this.current.state;
  }

  /** The current state with its reason and extra fields. */
  get status(): StateChange<S, X> {
    return this.current;
  }

  /** Replays the current state to each new subscriber; completes on {@link complete}. */
  get status$(): Observable<StateChange<S, X>> {
    return this.subject.asObservable();
  }

  /** True when `state` is one of `states`. */
  is(...states: S[]): boolean {
    return states.includes(this.current.state);
  }

  /** True when the table allows `current -> next`. */
  can(next: S): boolean {
    return next === this.current.state || this.transitions[this.current.state].includes(next);
  }

  /**
   * Moves to `next`. Throws {@link IllegalStateTransitionError} when the
   * table forbids it: callers test {@link can} where a race is expected.
   */
  setState(next: S, reason?: string, extra?: Partial<X>): void {
    const from = this.current.state;
    if (!this.can(next)) throw new IllegalStateTransitionError(this.owner, from, next);
    const change = {
      ...extra,
      state: next,
      ...(reason === undefined ? {} : { reason }),
    } as StateChange<S, X>;
    if (from === next && reason === this.current.reason && !hasNew(this.current, extra)) return;
    this.current = change;
    this.logger?.debug?.(`${this.owner}: ${from} -> ${next}${reason ? ` (${reason})` : ''}`);
    this.subject.next(change);
  }

  /** Ends `status$` (after the final state was set). */
  complete(): void {
    this.subject.complete();
  }
}

function hasNew(current: object, extra: object | undefined): boolean {
  if (!extra) return false;
  return Object.entries(extra).some(
    ([key, value]) => (current as Record<string, unknown>)[key] !== value,
  );
}

import type { Observable } from 'rxjs';
import { logLine } from '../common/log-line.js';
import type { HeraldLogger } from '../common/logger.js';
import { StateMachine, type StateChange } from '../common/state-machine.js';
import { WarningLimiter } from '../common/warning-limiter.js';
import { RuntimeUnloadedError } from './ffi.errors.js';
import type { NativeZeroLength } from './native-runtime.options.js';

/**
 * A runtime's lifecycle: `loaded` once its init returned 0 (a failed load
 * never makes one), `unloaded` when its last handle closed: final, the same
 * library + cfg cannot be initialised again in the process. @publicApi
 */
export type NativeRuntimeState = 'loaded' | 'unloaded';

/** What `NativeRuntime.status$` carries. @publicApi */
export type NativeRuntimeStatus = StateChange<NativeRuntimeState>;

const TRANSITIONS = { loaded: ['unloaded'], unloaded: [] } as const;

/** One initialised runtime (library + cfg), shared by every handle on it. */
export class LoadedRuntime {
  inFlight = 0;
  calls = 0;
  answered = 0;
  failed = 0;
  refusedFull = 0;
  timedOut = 0;
  late = 0;
  unterminated = 0;
  references = 0;
  /** The `pollerSpinUs` it was loaded with (set once, by load). */
  pollerSpinUs = 0;
  /** Mirrors the machine's `unloaded` state: read on every call, a field rather than `is(...)` (an array per read). */
  private isUnloaded = false;
  private readonly machine: StateMachine<NativeRuntimeState>;
  private readonly warnings: WarningLimiter;

  constructor(
    readonly key: string,
    readonly id: number,
    readonly name: string,
    readonly path: string,
    readonly maxQueue: number,
    readonly zeroLength: NativeZeroLength,
    logger: HeraldLogger,
  ) {
    this.machine = new StateMachine(`native runtime "${name}"`, 'loaded', TRANSITIONS, logger);
    this.warnings = new WarningLimiter(logger);
  }

  get unloaded(): boolean {
    return this.isUnloaded;
  }

  get status$(): Observable<NativeRuntimeStatus> {
    return this.machine.status$;
  }

  /** The last handle closed: final. */
  markUnloaded(): void {
    this.isUnloaded = true;
    this.machine.setState('unloaded', 'its last handle was closed');
    this.warnings.flush();
    this.machine.complete();
  }

  /** An rsp_len 0 answer with no NUL in its block (zeroLength 'cstring'): read as empty, counted, logged. */
  unterminatedAnswer(): void {
    this.unterminated++;
    this.warnings.warn(
      'unterminated',
      logLine(
        'ffi',
        'unterminated-answer',
        `runtime "${this.name}" answered rsp_len 0 with no NUL within the block; read as an empty ` +
          `answer (${this.unterminated} so far; a runtime answering malloc(0) needs zeroLength: 'empty')`,
        { runtime: this.name, path: this.path },
      ),
    );
  }

  unloadedError(): RuntimeUnloadedError {
    return new RuntimeUnloadedError(`runtime "${this.name}" is unloaded`);
  }
}

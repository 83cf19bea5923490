import type { HeraldLogger } from '../../common/logger.js';
import { StateMachine } from '../../common/state-machine.js';
import type { HeraldMicroserviceStatus } from '../microservice.interface.js';

/**
 * The lifecycle of a herald server or client: `idle` until `listen()` /
 * `connect()`, then the statuses Nest's `status` reports. `disconnected` is
 * final (after `close()` or a fail-fast start that gave up).
 * @publicApi
 */
export type HeraldLifecycleState = 'idle' | HeraldMicroserviceStatus;

/** The legal transitions (DESIGN.md "State"). */
export const HERALD_TRANSITIONS: {
  readonly [S in HeraldLifecycleState]: readonly HeraldLifecycleState[];
} = {
  idle: ['connecting', 'disconnected'],
  connecting: ['connected', 'reconnecting', 'disconnected'],
  connected: ['reconnecting', 'disconnected'],
  reconnecting: ['connected', 'disconnected'],
  disconnected: [],
};

/** One state machine per server or client. */
export function heraldStateMachine(
  owner: string,
  logger: HeraldLogger,
): StateMachine<HeraldLifecycleState> {
  return new StateMachine<HeraldLifecycleState>(owner, 'idle', HERALD_TRANSITIONS, logger);
}

/**
 * A logger in front of the one a hub or a redis connection is given, that
 * remembers the last warning or error it passed on: the cause a connect
 * timeout names (the hub and the connection retry on their own and report
 * a failed attempt only in the log).
 */
export class CauseRecorder implements HeraldLogger {
  /** The last warning or error since {@link clear}. */
  last?: string;

  constructor(private readonly target: HeraldLogger) {}

  log(message: string): void {
    this.target.log(message);
  }

  warn(message: string): void {
    this.last = message;
    this.target.warn(message);
  }

  error(message: string, stack?: string): void {
    this.last = message;
    this.target.error(message, stack);
  }

  debug(message: string): void {
    this.target.debug?.(message);
  }

  /** Forgets the last problem (on connect: an old cause would mislead). */
  clear(): void {
    this.last = undefined;
  }
}

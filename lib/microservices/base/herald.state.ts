import type { EventEmitter } from 'node:events';
import { systemClock } from '../../common/clock.js';
import { logLine } from '../../common/log-line.js';
import type { HeraldLogger } from '../../common/logger.js';
import { StateMachine } from '../../common/state-machine.js';
import { ConnectTimeoutError } from '../microservice.errors.js';
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

/** What {@link heraldLifecycle} gives a server or client. */
export interface HeraldLifecycle {
  readonly state: StateMachine<HeraldLifecycleState>;
  readonly connectionLogger: CauseRecorder;
}

/**
 * The state machine of a server or client, wired so Nest's `status` and the
 * deprecated `'status'` event are fed from `status$` alone, and a connection
 * forgets its last failure once connected.
 */
export function heraldLifecycle(
  owner: string,
  logger: HeraldLogger,
  nestStatus: { next(status: HeraldMicroserviceStatus): void },
  events: EventEmitter,
): HeraldLifecycle {
  const state = heraldStateMachine(owner, logger);
  const connectionLogger = new CauseRecorder(logger);
  /** When a live connection was lost: recovery logs the downtime. */
  let lostAt: number | undefined;
  let connected = false;
  state.status$.subscribe(change => {
    if (change.state === 'idle') return;
    if (change.state === 'reconnecting' && connected) {
      connected = false;
      lostAt = systemClock.now();
      logger.warn(
        logLine(
          'microservice',
          'microservice-connection-lost',
          `connection lost: ${change.reason ?? 'unknown'}`,
          {
            owner,
          },
        ),
      );
    } else if (change.state === 'connected') {
      connected = true;
      if (lostAt !== undefined) {
        logger.log(
          logLine('microservice', 'microservice-connection-recovered', 'connection recovered', {
            owner,
            downtimeMs: systemClock.now() - lostAt,
          }),
        );
        lostAt = undefined;
      }
    } else if (change.state === 'disconnected') connected = false;
    if (change.state === 'connected') connectionLogger.clear();
    nestStatus.next(change.state);
    events.emit('status', change.state);
  });
  return { state, connectionLogger };
}

/**
 * `attempt`, or `ConnectTimeoutError` after `timeoutMs` naming the last
 * connection failure `recorder` saw (the attempt itself goes on: hubs and
 * connections keep retrying on their own).
 */
export function connectWithin(
  attempt: Promise<void>,
  owner: string,
  timeoutMs: number,
  recorder: CauseRecorder,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new ConnectTimeoutError(owner, timeoutMs, recorder.last)),
      timeoutMs,
    );
  });
  return Promise.race([attempt, timeout]).finally(() => clearTimeout(timer));
}

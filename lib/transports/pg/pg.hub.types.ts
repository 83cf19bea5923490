import type { StateChange } from '../../common/state-machine.js';

/**
 * Where the hub is: `idle` before `start()`, `connecting` until the first
 * LISTEN connection is up, `connected`, `reconnecting` after a loss,
 * `stopping`, `stopped`. @publicApi
 */
export type PgHubState =
  'idle' | 'connecting' | 'connected' | 'reconnecting' | 'stopping' | 'stopped';

/** What `hub.status$` carries. @publicApi */
export type PgHubStatus = StateChange<PgHubState>;

/**
 * The hub's counters (pg-hub's HubStats, counted correctly, plus a few of
 * our own). @publicApi
 */
export interface PgHubStats {
  /** Notifications received on the LISTEN connection. */
  readonly rxEventCount: number;
  /** Received payloads that were not pg-hub events (counted, logged, dropped). */
  readonly rxErrorCount: number;
  /** Notifications of a channel no consumer wants any more. */
  readonly rxUnroutableCount: number;
  /** Topics added to consumers. */
  readonly subscribeCount: number;
  readonly listenCount: number;
  readonly listenFailCount: number;
  readonly unlistenCount: number;
  readonly unlistenFailCount: number;
  /** Notifies the server accepted. */
  readonly notifyCount: number;
  /** Notifies the server refused (each one alone, after its batch failed). */
  readonly notifyFailCount: number;
  /** Notify statements sent (round trips), retries included. */
  readonly notifyBatchCount: number;
  /** Batches that failed with a statement error and were retried one by one. */
  readonly notifyRetryCount: number;
  /** Notifies given up with `false` because the hub stopped first. */
  readonly notifyCancelCount: number;
  /** Successful connects of the LISTEN connection (first one and reconnects). */
  readonly connectCount: number;
  readonly connectFailCount: number;
  /** Losses of the LISTEN connection. */
  readonly disconnectCount: number;
  /** Hooks that threw or rejected. */
  readonly hookErrorCount: number;
  /** High-water mark of pending LISTEN/UNLISTEN commands. */
  readonly q1Max: number;
  /** High-water mark of queued notifies. */
  readonly q2Max: number;
  /** Notifies queued now. */
  readonly queued: number;
  readonly consumerCount: number;
  /**
   * Milliseconds since the server last answered the LISTEN connection
   * (connect, LISTEN or heartbeat); `@nestjs/terminus`'s HeraldHealthIndicator
   * reports the hub down past its `maxHeartbeatAgeMs`.
   */
  readonly heartbeatAgeMs: number;
}

/** Options of one notify. @publicApi */
export interface PgNotifyOptions {
  /** Called with true once sent, false when the hub stopped first or the server refused it. */
  confirm?: (sent: boolean) => void;
  /**
   * A client of yours (e.g. inside your transaction): the notify runs on it at
   * once, not queued, and so is delivered only if your transaction commits.
   * PostgreSQL folds identical topic+payload pairs within one transaction.
   */
  client?: { query(text: string, values: unknown[]): Promise<unknown> };
}

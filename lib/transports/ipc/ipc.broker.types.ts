import type { StateChange } from '../../common/state-machine.js';

/* The broker's public types: its states, the events it emits, its counters. */

/** The broker's states: `idle` until `listen`, `listening`, then `closing` and `closed`. @publicApi */
export type IpcBrokerState = 'idle' | 'listening' | 'closing' | 'closed';

/** What {@link IpcBroker.status$} carries. @publicApi */
export type IpcBrokerStatus = StateChange<IpcBrokerState>;

/** Events an {@link IpcBroker} emits. @publicApi */
export interface IpcBrokerEvents {
  listening: [socketPath: string];
  connected: [workerId: number, pid: number];
  disconnected: [workerId: number, reason: string];
  /** A frame was refused and its connection closed. */
  refused: [reason: string, workerId: number | undefined];
  error: [error: Error];
  closed: [];
}

/** Counters of {@link IpcBroker.stats}. @publicApi */
export interface IpcBrokerStats {
  readonly [name: string]: number;
  readonly connections: number;
  readonly workersConnected: number;
  /** Events accepted from posters. */
  readonly posted: number;
  /** Resent frames dropped because they were already accepted (origin + sequence). */
  readonly duplicates: number;
  /** Unique events dropped as repeats within the TTL. */
  readonly uniqueDropped: number;
  /** Event frames written to workers. */
  readonly delivered: number;
  /** Events dropped from the full queue of a worker that was not connected (each logged with its source and event). */
  readonly dropped: number;
  /** Posts refused with a queue-full rejection after postTimeoutMs. */
  readonly rejected: number;
  readonly refusedFrames: number;
  /** Handshakes refused because the worker id kept sending refused frames. */
  readonly cutOff: number;
  /** HELLOs refused because another live process holds the worker id. */
  readonly identityConflicts: number;
  /** Connections closed because no HELLO came within handshakeTimeoutMs. */
  readonly handshakeTimeouts: number;
  /** Events still in a queue when the broker closed, with no copy left elsewhere (each logged). */
  readonly undeliverableAtClose: number;
  readonly queued: number;
  readonly queueHighWater: number;
  /** High-water mark of the events held back from posters (all connections). */
  readonly backlogHighWater: number;
  /** High-water mark of accepted events not yet delivered to every worker (all posters). */
  readonly undeliveredHighWater: number;
}

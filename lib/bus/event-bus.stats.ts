/** The bus's counters, shared by its parts (each increments its own). */
export interface BusCounters {
  posted: number;
  postedLocal: number;
  publishFailed: number;
  delivered: number;
  handled: number;
  failed: number;
  timeouts: number;
  decodeErrors: number;
  unhandled: number;
  dropped: number;
  acked: number;
  nacked: number;
  queueHighWater: number;
  /** Posts refused because the drain had begun. */
  refusedDraining: number;
  /** Events refused by their schema before any handler ran. */
  invalid: number;
}

/** Fresh counters, all zero. */
export function busCounters(): BusCounters {
  return {
    posted: 0,
    postedLocal: 0,
    publishFailed: 0,
    delivered: 0,
    handled: 0,
    failed: 0,
    timeouts: 0,
    decodeErrors: 0,
    unhandled: 0,
    dropped: 0,
    acked: 0,
    nacked: 0,
    queueHighWater: 0,
    refusedDraining: 0,
    invalid: 0,
  };
}

/** Counters of `EventBus.stats()`. @publicApi */
export interface EventBusStats {
  readonly posted: number;
  readonly postedLocal: number;
  readonly publishFailed: number;
  readonly delivered: number;
  readonly handled: number;
  readonly failed: number;
  readonly timeouts: number;
  readonly decodeErrors: number;
  readonly unhandled: number;
  readonly dropped: number;
  readonly acked: number;
  readonly nacked: number;
  readonly queueHighWater: number;
  /** Posts refused with `BusDrainingError` once the shutdown drain had begun. */
  readonly refusedDraining: number;
  /**
   * Events refused by their schema (option `schemas`) before any handler
   * ran: arrived from the transport, or posted with `postLocal`. Posts
   * refused before sending are not counted: their `post` rejected.
   */
  readonly invalid: number;
  readonly queued: number;
  readonly inFlight: number;
  /** Handler calls still running (a timed-out one counts until it really settles). */
  readonly running: number;
  readonly handlers: number;
  readonly transport: Readonly<Record<string, number>>;
}

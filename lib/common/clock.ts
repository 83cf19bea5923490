/** A source of time, injectable so tests of time-based rules need no sleeps. @publicApi */
export interface Clock {
  /** Milliseconds, monotonic enough for TTLs (Date.now() by default). */
  now(): number;
}

/** The wall clock. @publicApi */
export const systemClock: Clock = { now: () => Date.now() };

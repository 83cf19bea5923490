import type { Envelope } from '../interfaces/envelope.interface.js';
import type { Delivery, TransportFeatures } from '../interfaces/transport.interface.js';

/**
 * How many of this bus's own posts must still come back through a transport
 * that leaves the process (ipc, pg, redis), so `whenIdle` does not call the
 * bus idle between "the transport accepted it" and "our handlers got it".
 *
 * A count, not a list of ids: a post is this bus's own when its envelope
 * carries the bus's origin (one per bus, see `EventBus.origin`: two buses
 * of one process tell their posts apart), compared once per delivery while
 * posts are awaited. Only a first attempt counts (a redelivery of a copy
 * that already came back is not another post). Bounded by `bound` (beyond
 * it, the oldest are no longer awaited), and the waits on it are bounded in
 * time, so a copy an at-most-once transport lost never holds anything for
 * ever. The local transport hands posts back inside `publish`: nothing to
 * watch. `unique` posts are not watched: another process may be the one to
 * run them.
 */
export class LoopbackWatch {
  private awaiting = 0;
  private readonly active: boolean;

  constructor(
    features: TransportFeatures,
    /** The bus's origin: what its own posts carry. */
    private readonly origin: string,
    private readonly bound: number,
  ) {
    this.active = features.loopback && features.reach !== 'process';
  }

  /** Own posts accepted and not back yet. */
  get size(): number {
    return this.awaiting;
  }

  /** A post is on its way: wait for its own copy (when watched). */
  expect(envelope: Envelope): void {
    if (this.active && envelope.unique === undefined && this.awaiting < this.bound) {
      this.awaiting++;
    }
  }

  /** A delivery arrived: if it is the first copy of one of this bus's posts, it is no longer awaited. */
  arrived(delivery: Delivery): void {
    if (this.awaiting === 0 || delivery.attempt !== 1) return;
    const { envelope } = delivery;
    if (envelope.origin === this.origin && envelope.unique === undefined) this.awaiting--;
  }

  /** The transport refused (or never got) a post: its copy never comes back. */
  refused(envelope: Envelope): void {
    if (this.awaiting > 0 && this.active && envelope.unique === undefined) this.awaiting--;
  }

  clear(): void {
    this.awaiting = 0;
  }
}

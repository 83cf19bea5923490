import type { Envelope } from '../interfaces/envelope.interface.js';
import type { TransportFeatures } from '../interfaces/transport.interface.js';

/**
 * This process's own posts that must still come back through a transport
 * that leaves the process (ipc, pg, redis), so `whenIdle` does not call the
 * bus idle between "the transport accepted it" and "our handlers got it".
 * Bounded (oldest forgotten first), and the waits on it are bounded in time,
 * so a copy an at-most-once transport lost never holds anything for ever.
 * The local transport hands posts back inside `publish`: nothing to watch.
 * `unique` posts are not watched: another process may be the one to run them.
 */
export class LoopbackWatch {
  private readonly pending = new Set<string>();
  private readonly active: boolean;

  constructor(
    features: TransportFeatures,
    private readonly bound: number,
  ) {
    this.active = features.loopback && features.reach !== 'process';
  }

  get size(): number {
    return this.pending.size;
  }

  /** Starts watching for this post's own copy; @returns whether it is watched. */
  expect(envelope: Envelope): boolean {
    if (!this.active || envelope.unique !== undefined) return false;
    this.pending.add(envelope.id);
    if (this.pending.size > this.bound) {
      this.pending.delete(this.pending.values().next().value!);
    }
    return true;
  }

  /** An envelope was delivered: if it is one of ours, it is no longer awaited. */
  arrived(envelope: Envelope): void {
    if (this.pending.size > 0) this.pending.delete(envelope.id);
  }

  forget(id: string): void {
    this.pending.delete(id);
  }

  clear(): void {
    this.pending.clear();
  }
}

import type { BrokerConnection } from './ipc.broker-state.js';
import { FrameType } from './ipc.constants.js';

/**
 * The broker's write batching: frames for a connection are built into its
 * writer as they arise and leave in one `write` per connection per
 * event-loop turn. `setImmediate` runs after the turn's I/O, so every socket
 * read in it shares that one write; `prepare` adds the frames due at write
 * time (the cumulative ack, DELIVERED, WITNESSED, RELEASED).
 */
export class WriteBatcher {
  private readonly dirty = new Set<BrokerConnection>();
  private scheduled = false;
  private readonly flushBound = (): void => this.flush();

  constructor(private readonly prepare: (c: BrokerConnection) => void) {}

  /** `c` has frames to write (or an ack due): written at the end of this turn. */
  markDirty(c: BrokerConnection): void {
    this.dirty.add(c);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flushBound);
  }

  /** A closed connection: nothing more to write to it. */
  forget(c: BrokerConnection): void {
    this.dirty.delete(c);
  }

  /** Writes every dirty connection's frames now. */
  flush(): void {
    this.scheduled = false;
    for (const c of this.dirty) {
      if (c.closing) continue;
      this.prepare(c);
      c.writer.writeTo(c.socket);
    }
    this.dirty.clear();
  }
}

/** Writes the cumulative ack of what the broker processed from `c`, when one is due. */
export function writeAckDue(c: BrokerConnection): void {
  if (c.ackDue <= c.ackSent) return;
  c.writer.begin(FrameType.Ack);
  c.writer.u48(c.ackDue);
  c.writer.end();
  c.ackSent = c.ackDue;
}

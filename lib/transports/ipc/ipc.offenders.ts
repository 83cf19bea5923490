import type { Clock } from '../../common/clock.js';
import type { BrokerConnection } from './ipc.broker-state.js';
import { FrameType } from './ipc.constants.js';
import { writeAckDue } from './ipc.writes.js';

/** A client session whose connections had this many frames refused within REFUSAL_WINDOW_MS is cut off. */
export const MAX_REFUSALS = 5;
export const REFUSAL_WINDOW_MS = 10_000;
/** How long a cut-off session's handshakes are refused. */
export const CUT_OFF_MS = 30_000;
/** Sessions remembered, oldest forgotten first. */
export const MAX_OFFENDERS = 1024;

/** Recent refused frames of one client session (one worker process, across its reconnects). */
interface Offender {
  readonly times: number[];
  /** Its handshakes are refused until then. */
  until: number;
}

/**
 * The broker's offenders: a client session whose connections keep sending
 * refused frames is cut off for a while (its HELLOs refused), not looped
 * through reconnects; a new process with the same worker id has another
 * session and is served. Bounded: at most MAX_OFFENDERS sessions remembered.
 */
export class Offenders {
  private readonly offenders = new Map<string, Offender>();
  /** Handshakes refused because the session was cut off. */
  cutOff = 0;

  constructor(private readonly clock: Clock) {}

  /** Records a refused frame of `session`; true when this one cut it off. */
  offended(session: string): boolean {
    const now = this.clock.now();
    let offender = this.offenders.get(session);
    if (!offender) {
      if (this.offenders.size >= MAX_OFFENDERS) {
        this.offenders.delete(this.offenders.keys().next().value!);
      }
      offender = { times: [], until: 0 };
      this.offenders.set(session, offender);
    }
    offender.times.push(now);
    while (offender.times.length > 0 && offender.times[0] <= now - REFUSAL_WINDOW_MS)
      offender.times.shift();
    if (offender.times.length < MAX_REFUSALS) return false;
    offender.until = now + CUT_OFF_MS;
    offender.times.length = 0;
    return true;
  }

  /** Whether `session`'s handshakes are refused now (counted in {@link cutOff} when so). */
  isCutOff(session: string): boolean {
    if ((this.offenders.get(session)?.until ?? 0) <= this.clock.now()) return false;
    this.cutOff++;
    return true;
  }

  /** Sessions remembered. */
  get size(): number {
    return this.offenders.size;
  }
}

/**
 * Tells a client which frame was refused and why, after the ack of what was
 * processed before it, and closes the connection once that is written
 * (destroyed after `lingerMs` if the client does not close its end).
 */
export function writeRefusal(
  c: BrokerConnection,
  seq: number,
  reason: string,
  lingerMs = 1000,
): void {
  writeAckDue(c);
  c.writer.begin(FrameType.Refuse);
  c.writer.u48(seq);
  c.writer.str(reason);
  c.writer.end();
  c.closing = true;
  c.socket.end(c.writer.take());
  setTimeout(() => c.socket.destroy(), lingerMs).unref();
}

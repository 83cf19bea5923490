import { describeError } from '../../common/describe-error.js';
import { Fifo } from '../../common/fifo.js';
import { logLine } from '../../common/log-line.js';
import type { HeraldLogger } from '../../common/logger.js';
import type { WarningLimiter } from '../../common/warning-limiter.js';
import type { Envelope } from '../../interfaces/envelope.interface.js';
import type { Delivery, Settlement } from '../../interfaces/transport.interface.js';
import { decodeEventBody, type IdSpan } from './ipc.codec.js';
import { DELIVER_WITNESS } from './ipc.constants.js';
import type { BodyReader } from './ipc.frame.js';
import { HandledIds } from './ipc.handled-ids.js';
import { StringCache } from './ipc.string-cache.js';

/** A copy of a post of the broker's process, kept until RELEASED, to resend to a next broker. */
interface WitnessCopy {
  readonly hostSeq: number;
  readonly envelope: Envelope;
}

/** What the inbound side needs of its client. */
export interface InboundHost {
  /** Hands an event to the bus. */
  deliver(delivery: Delivery): void;
  /** The cumulative ack moved: write it at the end of this turn. */
  scheduleFlush(): void;
  readonly logger: HeraldLogger;
  readonly limiter: WarningLimiter;
  /** How many witness copies may be held (twice the queue bound plus the send window). */
  copyLimit(): number;
}

/** A delivered event; settling it lets the cumulative ack move past it. */
class IpcDelivery implements Delivery {
  readonly attempt = 1;
  done = false;

  constructor(
    readonly envelope: Envelope,
    readonly seq: number,
    readonly epoch: number,
    private readonly inbound: Inbound,
  ) {}

  settle(settlement: Settlement): void {
    this.inbound.settled(this, settlement);
  }
}

/**
 * The client's inbound side: events the broker delivers, numbered per broker
 * life; resends of what this process already received or handled dropped;
 * the cumulative ack moved over what the bus settled, in order; copies of
 * the broker process's posts kept (as a witness) until the broker releases
 * them, to resend to a next broker.
 */
export class Inbound {
  /** False once the bus stops taking events in: undelivered ones stay with the broker. */
  intake = true;
  /** Highest seq received from this broker life. */
  lastReceived = 0;
  private epoch = 0;
  private unsettled = new Fifo<IpcDelivery>();
  private ackPoint = 0;
  private ackSent = 0;
  /**
   * Ids of events handed to the bus recently (the last 65,536 to 131,072):
   * a resent copy already handled here is dropped.
   */
  private readonly handled = new HandledIds();
  /** Where the current event's id lies in the frame. */
  private readonly span: IdSpan = { idStart: 0, idEnd: 0 };
  /** The names and times that repeat from event to event, decoded once. */
  private readonly names = new StringCache();
  /** Copies of the broker process's posts this process received, until RELEASED. */
  private copies = new Fifo<WitnessCopy>();
  readonly counters = {
    delivered: 0,
    duplicatesIn: 0,
    acked: 0,
    nacked: 0,
    decodeErrors: 0,
    unsettledHighWater: 0,
    /** Resent copies of events this process already handled, dropped (effectively once per process). */
    duplicateIdsDropped: 0,
    /** Witness copies given up because they hit their bound (logged). */
    witnessDropped: 0,
  };

  constructor(private readonly host: InboundHost) {}

  /** A DELIVER frame's body. */
  incoming(r: BodyReader): void {
    const seq = r.u48('seq');
    const flags = r.u8('flags');
    const hostSeq = flags & DELIVER_WITNESS ? r.u48('hostSeq') : 0;
    if (!this.intake) return;
    if (seq <= this.lastReceived) {
      this.counters.duplicatesIn++;
      return;
    }
    this.lastReceived = seq;
    let envelope: Envelope;
    try {
      envelope = decodeEventBody(r, this.span, this.names);
    } catch (error) {
      this.counters.decodeErrors++;
      this.host.limiter.error(
        'decode-failed',
        logLine(
          'ipc',
          'deliver-undecodable',
          `cannot decode an event from the broker: ${describeError(error)}; acknowledged and skipped`,
          { seq, decodeErrors: this.counters.decodeErrors },
        ),
      );
      const skipped = new IpcDelivery(undefined as unknown as Envelope, seq, this.epoch, this);
      this.unsettled.push(skipped);
      this.settled(skipped, { outcome: 'ack' });
      return;
    }
    if (hostSeq > 0) this.keepCopy(hostSeq, envelope);
    const delivery = new IpcDelivery(envelope, seq, this.epoch, this);
    this.unsettled.push(delivery);
    if (this.unsettled.length > this.counters.unsettledHighWater)
      this.counters.unsettledHighWater = this.unsettled.length;
    if (!this.handled.firstTime(r.buf, this.span.idStart, this.span.idEnd)) {
      // A copy resent after a failover (by its poster or a witness) that this process already handled.
      this.counters.duplicateIdsDropped++;
      this.host.logger.debug?.(
        `ipc: dropped a resent copy of ${envelope.source}/${envelope.event} (id ${envelope.id}) already handled here`,
      );
      this.settled(delivery, { outcome: 'ack' });
      return;
    }
    this.counters.delivered++;
    this.host.deliver(delivery);
  }

  /** Keeps a copy of a post of the broker's process (a witness) until the broker releases it. */
  private keepCopy(hostSeq: number, envelope: Envelope): void {
    this.copies.push({ hostSeq, envelope });
    // Bounded: the broker's process has at most its queue bound plus a window of them outstanding.
    const limit = this.host.copyLimit();
    if (this.copies.length > limit) {
      const dropped = this.copies.shift()!.envelope;
      this.counters.witnessDropped++;
      this.host.limiter.warn(
        'witness-dropped',
        logLine(
          'ipc',
          'witness-dropped',
          `more than ${limit} copies of the broker process's posts held; this one would not be resent by this process after a failover`,
          {
            source: dropped.source,
            event: dropped.event,
            id: dropped.id,
            dropped: this.counters.witnessDropped,
          },
        ),
      );
    }
  }

  /** RELEASED: the broker process's posts up to `hostSeq` left every queue; their copies go. */
  released(hostSeq: number): void {
    for (let head = this.copies.at(0); head && head.hostSeq <= hostSeq; head = this.copies.at(0))
      this.copies.shift();
  }

  /** The bus settled a delivery: move the cumulative ack over every settled one in front. */
  settled(delivery: IpcDelivery, settlement: Settlement): void {
    if (delivery.done) return;
    delivery.done = true;
    if (delivery.envelope !== undefined) {
      if (settlement.outcome === 'ack') this.counters.acked++;
      else this.counters.nacked++;
    }
    if (delivery.epoch !== this.epoch) return;
    let moved = false;
    for (let head = this.unsettled.at(0); head?.done; head = this.unsettled.at(0)) {
      this.unsettled.shift();
      this.ackPoint = head.seq;
      moved = true;
    }
    if (moved) this.host.scheduleFlush();
  }

  /**
   * A new broker life numbers from 1 again: forget what was received from the
   * old one. @returns the copies of the dead broker process's posts, to resend.
   */
  newBrokerLife(): Envelope[] {
    const copies: Envelope[] = [];
    for (let copy = this.copies.shift(); copy; copy = this.copies.shift())
      copies.push(copy.envelope);
    this.epoch++;
    this.lastReceived = 0;
    this.unsettled = new Fifo<IpcDelivery>();
    this.ackPoint = 0;
    this.ackSent = 0;
    return copies;
  }

  /** A new connection: the last ack is told again (it may have been lost with the old one). */
  reconnected(): void {
    if (this.ackPoint > 0) this.ackSent = -1;
  }

  /** The cumulative ack to write now, or 0 when the broker has it already. */
  takeAck(): number {
    if (this.ackPoint === this.ackSent || this.ackPoint <= 0) return 0;
    this.ackSent = this.ackPoint;
    return this.ackPoint;
  }
}

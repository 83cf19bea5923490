import { WarningLimiter } from '../../../../lib/common/warning-limiter.js';
import type { Delivery } from '../../../../lib/interfaces/transport.interface.js';
import { encodeEventBody } from '../../../../lib/transports/ipc/ipc.codec.js';
import { DELIVER_WITNESS, FrameType } from '../../../../lib/transports/ipc/ipc.constants.js';
import { BodyReader, FrameReader, FrameWriter } from '../../../../lib/transports/ipc/ipc.frame.js';
import { Inbound } from '../../../../lib/transports/ipc/ipc.inbound.js';
import { memoryLogger } from '../../../helpers/memory-logger.js';

/** A DELIVER frame's body reader: seq, flags [hostSeq], event body. */
function deliver(seq: number, id: string, hostSeq = 0, broken = false): BodyReader {
  const w = new FrameWriter();
  w.begin(FrameType.Deliver);
  w.u48(seq);
  w.u8(hostSeq ? DELIVER_WITNESS : 0);
  if (hostSeq) w.u48(hostSeq);
  if (broken) w.u8(99);
  else
    encodeEventBody(w, {
      id,
      source: 's',
      event: 'e',
      payload: '1',
      origin: 'o',
      occurredAt: 't',
    });
  w.end();
  const reader = new FrameReader(1 << 20);
  reader.push(w.take());
  reader.next();
  return new BodyReader().reset(reader.buf, reader.start, reader.end);
}

function setup(copyLimit = 10) {
  const logger = memoryLogger();
  const delivered: Delivery[] = [];
  let flushes = 0;
  const inbound = new Inbound({
    deliver: d => void delivered.push(d),
    scheduleFlush: () => void flushes++,
    logger,
    limiter: new WarningLimiter(logger),
    copyLimit: () => copyLimit,
  });
  return { inbound, delivered, logger, flushes: () => flushes };
}

describe('ipc client inbound', () => {
  it('hands events to the bus in order; the ack moves only over a settled prefix', () => {
    const { inbound, delivered, flushes } = setup();
    inbound.incoming(deliver(1, 'a'));
    inbound.incoming(deliver(2, 'b'));
    inbound.incoming(deliver(3, 'c'));
    expect(delivered.map(d => d.envelope.id)).toEqual(['a', 'b', 'c']);
    delivered[1].settle({ outcome: 'ack' });
    expect(inbound.takeAck()).toBe(0);
    delivered[0].settle({ outcome: 'nack', error: new Error('x') });
    expect(flushes()).toBe(1);
    expect(inbound.takeAck()).toBe(2);
    expect(inbound.takeAck()).toBe(0);
    // Settling twice counts once.
    delivered[0].settle({ outcome: 'ack' });
    expect(inbound.counters).toMatchObject({ acked: 1, nacked: 1, delivered: 3 });
  });

  it('drops a seq received already, and a resent copy of an id already handled (acked, counted)', () => {
    const { inbound, delivered } = setup();
    inbound.incoming(deliver(1, 'a'));
    inbound.incoming(deliver(1, 'a'));
    expect(inbound.counters.duplicatesIn).toBe(1);
    inbound.newBrokerLife();
    inbound.incoming(deliver(1, 'a'));
    expect(delivered).toHaveLength(1);
    expect(inbound.counters.duplicateIdsDropped).toBe(1);
    expect(inbound.takeAck()).toBe(1);
  });

  it('after a broker change, drops a copy handled before it and a second copy arriving after it', () => {
    const { inbound, delivered } = setup();
    inbound.incoming(deliver(1, 'a'));
    inbound.newBrokerLife();
    // A poster and a witness both resend 'b' to the new broker; 'a' was handled before.
    inbound.incoming(deliver(1, 'a'));
    inbound.incoming(deliver(2, 'b'));
    inbound.incoming(deliver(3, 'b'));
    expect(delivered.map(d => d.envelope.id)).toEqual(['a', 'b']);
    expect(inbound.counters.duplicateIdsDropped).toBe(2);
  });

  it('drops a second copy of an id in one broker life too (two witnesses resent it to a process that joined the new broker)', () => {
    const { inbound, delivered } = setup();
    inbound.incoming(deliver(1, 'x'));
    inbound.incoming(deliver(2, 'x'));
    expect(delivered).toHaveLength(1);
    expect(inbound.counters.duplicateIdsDropped).toBe(1);
  });

  it('an undecodable event is logged with its code, counted, and acknowledged past', () => {
    const { inbound, delivered, logger } = setup();
    inbound.incoming(deliver(1, 'a', 0, true));
    expect(delivered).toEqual([]);
    expect(inbound.counters.decodeErrors).toBe(1);
    expect(inbound.takeAck()).toBe(1);
    expect(logger.lines.some(l => l.startsWith('error ipc deliver-undecodable:'))).toBe(true);
  });

  it('keeps witness copies of the broker process posts until RELEASED; hands them over on a new broker', () => {
    const { inbound } = setup();
    inbound.incoming(deliver(1, 'a', 1));
    inbound.incoming(deliver(2, 'b', 2));
    inbound.incoming(deliver(3, 'c', 3));
    inbound.released(1);
    expect(inbound.newBrokerLife().map(e => e.id)).toEqual(['b', 'c']);
    expect(inbound.newBrokerLife()).toEqual([]);
  });

  it('witness copies are bounded: the oldest goes, counted and logged once per interval', () => {
    const { inbound, logger } = setup(1);
    inbound.incoming(deliver(1, 'a', 1));
    inbound.incoming(deliver(2, 'b', 2));
    inbound.incoming(deliver(3, 'c', 3));
    expect(inbound.counters.witnessDropped).toBe(2);
    expect(logger.lines.filter(l => l.startsWith('warn ipc witness-dropped:'))).toHaveLength(1);
  });

  it('after stopIntake nothing more reaches the bus; a new connection repeats the last ack', () => {
    const { inbound, delivered } = setup();
    inbound.incoming(deliver(1, 'a'));
    delivered[0].settle({ outcome: 'ack' });
    expect(inbound.takeAck()).toBe(1);
    inbound.reconnected();
    expect(inbound.takeAck()).toBe(1);
    inbound.intake = false;
    inbound.incoming(deliver(2, 'b'));
    expect(delivered).toHaveLength(1);
  });
});

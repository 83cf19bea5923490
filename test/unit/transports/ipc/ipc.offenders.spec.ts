import type net from 'node:net';
import { BrokerConnection } from '../../../../lib/transports/ipc/ipc.broker-state.js';
import { FrameType } from '../../../../lib/transports/ipc/ipc.constants.js';
import { BodyReader, FrameReader } from '../../../../lib/transports/ipc/ipc.frame.js';
import {
  CUT_OFF_MS,
  MAX_OFFENDERS,
  MAX_REFUSALS,
  Offenders,
  REFUSAL_WINDOW_MS,
  writeRefusal,
} from '../../../../lib/transports/ipc/ipc.offenders.js';

function clock(): { now(): number; t: number } {
  return {
    t: 1_000_000,
    now() {
      return this.t;
    },
  };
}

describe('ipc offenders', () => {
  it(`cuts a session off at its ${MAX_REFUSALS}th refused frame within the window, for CUT_OFF_MS`, () => {
    const c = clock();
    const offenders = new Offenders(c);
    for (let i = 1; i < MAX_REFUSALS; i++) expect(offenders.offended('s')).toBe(false);
    expect(offenders.isCutOff('s')).toBe(false);
    expect(offenders.offended('s')).toBe(true);
    expect(offenders.isCutOff('s')).toBe(true);
    expect(offenders.isCutOff('other')).toBe(false);
    expect(offenders.cutOff).toBe(1);
    c.t += CUT_OFF_MS;
    expect(offenders.isCutOff('s')).toBe(false);
  });

  it('forgets refusals older than the window', () => {
    const c = clock();
    const offenders = new Offenders(c);
    for (let i = 1; i < MAX_REFUSALS; i++) offenders.offended('s');
    c.t += REFUSAL_WINDOW_MS;
    expect(offenders.offended('s')).toBe(false);
    expect(offenders.isCutOff('s')).toBe(false);
  });

  it(`remembers at most ${MAX_OFFENDERS} sessions, the oldest forgotten first`, () => {
    const offenders = new Offenders(clock());
    for (let i = 0; i <= MAX_OFFENDERS; i++) offenders.offended(`s${i}`);
    expect(offenders.size).toBe(MAX_OFFENDERS);
  });

  it('a refusal goes after the ack due, then the connection ends', () => {
    const written: Buffer[] = [];
    let ended = false;
    const socket = {
      end(chunk: Buffer) {
        written.push(chunk);
        ended = true;
      },
      destroy() {},
    } as unknown as net.Socket;
    const c = new BrokerConnection(socket, 1);
    c.ackDue = 7;
    writeRefusal(c, 8, 'bad frame', 1);
    expect(ended).toBe(true);
    expect(c.closing).toBe(true);
    const reader = new FrameReader(1 << 16);
    reader.push(written[0]);
    const types: number[] = [];
    const body = new BodyReader();
    const seqs: number[] = [];
    while (reader.next()) {
      types.push(reader.type);
      seqs.push(body.reset(reader.buf, reader.start, reader.end).u48('seq'));
      reader.consume();
    }
    expect(types).toEqual([FrameType.Ack, FrameType.Refuse]);
    expect(seqs).toEqual([7, 8]);
  });
});

import type net from 'node:net';
import { BrokerConnection } from '../../../../lib/transports/ipc/ipc.broker-state.js';
import { FrameType } from '../../../../lib/transports/ipc/ipc.constants.js';
import { FrameReader } from '../../../../lib/transports/ipc/ipc.frame.js';
import { WriteBatcher, writeAckDue } from '../../../../lib/transports/ipc/ipc.writes.js';
import { waitFor } from '../../../helpers/wait-for.js';

function connection(id: number): { c: BrokerConnection; writes: Buffer[] } {
  const writes: Buffer[] = [];
  const socket = { write: (chunk: Buffer) => writes.push(chunk) } as unknown as net.Socket;
  return { c: new BrokerConnection(socket, id), writes };
}

function types(chunk: Buffer): number[] {
  const reader = new FrameReader(1 << 16);
  reader.push(chunk);
  const out: number[] = [];
  while (reader.next()) {
    out.push(reader.type);
    reader.consume();
  }
  return out;
}

describe('ipc broker write batching', () => {
  it('one write per connection per turn, however often it was marked, with the frames due at write time', async () => {
    const prepared: number[] = [];
    const batcher = new WriteBatcher(c => {
      prepared.push(c.id);
      writeAckDue(c);
    });
    const a = connection(1);
    const b = connection(2);
    for (let i = 0; i < 3; i++) {
      a.c.writer.begin(FrameType.Deliver);
      a.c.writer.u48(i + 1);
      a.c.writer.end();
      batcher.markDirty(a.c);
    }
    a.c.ackDue = 5;
    batcher.markDirty(b.c);
    expect(a.writes).toEqual([]);
    await waitFor(() => a.writes.length === 1);
    expect(types(a.writes[0])).toEqual([
      FrameType.Deliver,
      FrameType.Deliver,
      FrameType.Deliver,
      FrameType.Ack,
    ]);
    // Nothing due for b: no empty write.
    expect(b.writes).toEqual([]);
    expect(prepared.sort()).toEqual([1, 2]);
    expect(a.c.ackSent).toBe(5);
  });

  it('writes nothing to a closing or forgotten connection', async () => {
    const batcher = new WriteBatcher(writeAckDue);
    const closing = connection(1);
    const forgotten = connection(2);
    const live = connection(3);
    for (const x of [closing, forgotten, live]) {
      x.c.ackDue = 1;
      batcher.markDirty(x.c);
    }
    closing.c.closing = true;
    batcher.forget(forgotten.c);
    await waitFor(() => live.writes.length === 1);
    expect(closing.writes).toEqual([]);
    expect(forgotten.writes).toEqual([]);
  });

  it('an ack is written only when one is due', () => {
    const { c } = connection(1);
    writeAckDue(c);
    expect(c.writer.length).toBe(0);
    c.ackDue = 3;
    writeAckDue(c);
    writeAckDue(c);
    expect(types(c.writer.take())).toEqual([FrameType.Ack]);
  });
});

import type net from 'node:net';
import { UniqueCache } from '../../../../lib/common/unique-cache.js';
import { WarningLimiter } from '../../../../lib/common/warning-limiter.js';
import { HeldPosts } from '../../../../lib/transports/ipc/ipc.backlog.js';
import { BrokerConnection } from '../../../../lib/transports/ipc/ipc.broker-state.js';
import { encodeEventBody } from '../../../../lib/transports/ipc/ipc.codec.js';
import { FrameType } from '../../../../lib/transports/ipc/ipc.constants.js';
import { IpcProtocolError } from '../../../../lib/transports/ipc/ipc.errors.js';
import { BodyReader, FrameReader, FrameWriter } from '../../../../lib/transports/ipc/ipc.frame.js';
import { WorkerQueues } from '../../../../lib/transports/ipc/ipc.queues.js';
import { memoryLogger } from '../../../helpers/memory-logger.js';
import { waitFor } from '../../../helpers/wait-for.js';

const clock = {
  t: 1_000_000,
  now(): number {
    return this.t;
  },
};

function body(event: string, unique?: string): Buffer {
  const w = new FrameWriter();
  encodeEventBody(w, {
    id: `id-${event}`,
    source: 's',
    event,
    payload: '1',
    origin: 'o',
    occurredAt: 't',
    unique,
  });
  return w.take();
}

/** Frames in a connection's writer: [type, first u48] pairs. */
function frames(c: BrokerConnection): [number, number][] {
  const reader = new FrameReader(1 << 20);
  reader.push(c.writer.take());
  const out: [number, number][] = [];
  const r = new BodyReader();
  while (reader.next()) {
    out.push([reader.type, r.reset(reader.buf, reader.start, reader.end).u48('seq')]);
    reader.consume();
  }
  return out;
}

function setup(workers = 2, maxQueueLength = 4) {
  const logger = memoryLogger();
  const dirty = new Set<BrokerConnection>();
  let roomMade = 0;
  const queues = new WorkerQueues(
    workers,
    maxQueueLength,
    new UniqueCache({ ttlMs: 1000, cacheSize: 16 }, clock),
    1000,
    { markDirty: c => dirty.add(c), roomMade: () => void roomMade++ },
    logger,
    new WarningLimiter(logger, 10_000, clock),
  );
  let id = 0;
  const connect = (workerId: number, session = `session-${workerId}`): BrokerConnection => {
    const c = new BrokerConnection({} as net.Socket, ++id);
    c.window = maxQueueLength;
    c.postTimeoutMs = 100;
    queues.attach(c, queues.slots[workerId], session, 0);
    return c;
  };
  return { queues, logger, dirty, connect, roomMade: () => roomMade };
}

describe('ipc worker queues', () => {
  it('places a broadcast into every queue at once, writes it to the connected, acks the poster', () => {
    const { queues, connect, dirty } = setup();
    const a = connect(0);
    const b = connect(1);
    expect(queues.place(a, 1, body('e1'), undefined)).toBe(true);
    expect(queues.slots.map(s => s.queue.length)).toEqual([1, 1]);
    expect(frames(a)).toEqual([[FrameType.Deliver, 1]]);
    expect(frames(b)).toEqual([[FrameType.Deliver, 1]]);
    expect(a.ackDue).toBe(1);
    expect(dirty.has(a)).toBe(true);
    expect(queues.counters).toMatchObject({ posted: 1, delivered: 2 });
    // A resend of an accepted seq is dropped, counted.
    expect(queues.place(a, 1, body('e1'), undefined)).toBe(true);
    expect(queues.counters.duplicates).toBe(1);
    expect(queues.slots[1].queue.length).toBe(1);
  });

  it('tells the poster DELIVERED once every queue let go of its event', () => {
    const { queues, connect } = setup();
    const a = connect(0);
    const b = connect(1);
    queues.place(a, 1, body('e1'), undefined);
    frames(a);
    queues.acked(queues.slots[0], 1);
    queues.writeDelivered(a);
    expect(frames(a)).toEqual([]);
    queues.acked(queues.slots[1], 1);
    queues.writeDelivered(a);
    expect(frames(a)).toEqual([[FrameType.Delivered, 1]]);
    expect(b.slot!.queue.length).toBe(0);
  });

  it('a connected worker with a full queue holds broadcasts back (place is false); an ack makes room', () => {
    const { queues, connect, roomMade } = setup(2, 2);
    const a = connect(0);
    connect(1);
    expect(queues.place(a, 1, body('e1'), undefined)).toBe(true);
    expect(queues.place(a, 2, body('e2'), undefined)).toBe(true);
    expect(queues.place(a, 3, body('e3'), undefined)).toBe(false);
    expect(queues.connectedFull()?.id).toBe(0);
    queues.acked(queues.slots[0], 2);
    queues.acked(queues.slots[1], 1);
    expect(roomMade()).toBe(2);
    expect(queues.place(a, 3, body('e3'), undefined)).toBe(true);
  });

  it('a disconnected worker whose queue is full drops its oldest, counted and logged with its code', () => {
    const { queues, connect, logger } = setup(2, 2);
    const a = connect(0);
    for (let seq = 1; seq <= 3; seq++) {
      queues.place(a, seq, body(`e${seq}`), undefined);
      queues.acked(queues.slots[0], seq);
    }
    expect(queues.counters.dropped).toBe(1);
    expect(queues.slots[1].queue.length).toBe(2);
    expect(
      logger.lines.some(l =>
        l.startsWith(
          'warn ipc worker-queue-full: queue of worker #1 is full (2) while it is not connected; dropped its oldest event s/e1',
        ),
      ),
    ).toBe(true);
  });

  it('a unique event goes to one connected worker only', () => {
    const { queues, connect } = setup(3);
    const a = connect(0);
    connect(1);
    expect(queues.place(a, 1, body('u', 'key'), 'key')).toBe(true);
    expect(queues.slots.filter(s => s.queue.length === 1).map(s => s.id)).not.toContain(2);
    expect(queues.slots.reduce((n, s) => n + s.queue.length, 0)).toBe(1);
    // A repeat of the key within the TTL is dropped on purpose, counted.
    expect(queues.place(a, 2, body('u', 'key'), 'key')).toBe(true);
    expect(queues.counters.uniqueDropped).toBe(1);
  });

  it('refuses an ack beyond what was sent', () => {
    const { queues, connect } = setup();
    connect(0);
    expect(() => queues.acked(queues.slots[0], 1)).toThrow(IpcProtocolError);
  });

  it('a reconnect of the same session gets only what it did not receive; a new session gets everything', () => {
    const { queues, connect } = setup();
    const a = connect(0);
    connect(1);
    queues.place(a, 1, body('e1'), undefined);
    queues.place(a, 2, body('e2'), undefined);
    const slot = queues.slots[1];
    queues.detach(slot);
    const again = new BrokerConnection({} as net.Socket, 99);
    again.window = 4;
    queues.attach(again, slot, 'session-1', 1);
    expect(slot.sentSeq).toBe(1);
    queues.detach(slot);
    queues.attach(again, slot, 'another', 2);
    expect(slot.sentSeq).toBe(0);
  });

  it('at close, counts and logs the events queued for a worker with no live copy anywhere', () => {
    const { queues, connect, logger } = setup();
    const a = connect(0);
    queues.place(a, 1, body('e1'), undefined);
    // The poster keeps a copy while connected.
    expect(queues.reportUndeliverable()).toBe(0);
    queues.detach(queues.slots[0]);
    expect(queues.reportUndeliverable()).toBe(2);
    expect(logger.lines.some(l => l.startsWith('error ipc broker-close-undeliverable:'))).toBe(
      true,
    );
  });
});

describe('ipc held posts (back-pressure)', () => {
  it('holds an event while a connected queue is full, places it when room is made', async () => {
    const { queues, connect } = setup(2, 1);
    const held = new HeldPosts(queues, clock, 1);
    const a = connect(0);
    connect(1);
    held.offer(a, 1, body('e1'), undefined);
    held.offer(a, 2, body('e2'), undefined);
    expect(a.backlog.length).toBe(1);
    expect(held.highWater).toBe(1);
    // The window: a client may not have more unacknowledged than it was given.
    expect(() => held.offer(a, 3, body('e3'), undefined)).toThrow(/more than 1 events/);
    queues.acked(queues.slots[0], 1);
    queues.acked(queues.slots[1], 1);
    held.retry();
    await waitFor(() => a.backlog.length === 0);
    expect(a.ackDue).toBe(2);
    held.clear();
  });

  it('rejects a held event once its poster timeout passed (REJECT written, remembered for a reconnect)', () => {
    const { queues, connect } = setup(2, 1);
    const held = new HeldPosts(queues, clock, 1);
    const a = connect(0);
    connect(1);
    a.chunkAt = clock.now();
    held.offer(a, 1, body('e1'), undefined);
    held.offer(a, 2, body('e2'), undefined);
    frames(a);
    clock.t += 100;
    held.drain(a);
    expect(held.rejected).toBe(1);
    expect(frames(a)).toEqual([[FrameType.Reject, 2]]);
    expect(a.slot!.rejected.at(0)).toBe(2);
    expect(a.ackDue).toBe(2);
    held.clear();
  });
});

import {
  PayloadTooLargeError,
  QueueFullError,
  TransportClosedError,
} from '../../../../lib/common/errors.js';
import { WarningLimiter } from '../../../../lib/common/warning-limiter.js';
import type { Envelope } from '../../../../lib/interfaces/envelope.interface.js';
import { FrameType } from '../../../../lib/transports/ipc/ipc.constants.js';
import { BodyReader, FrameReader } from '../../../../lib/transports/ipc/ipc.frame.js';
import { Outbound } from '../../../../lib/transports/ipc/ipc.outbound.js';
import { memoryLogger } from '../../../helpers/memory-logger.js';
import { waitFor } from '../../../helpers/wait-for.js';

const envelope = (i: number, payload = '1'): Envelope => ({
  id: `id-${i}`,
  source: 's',
  event: 'e',
  payload,
  origin: 'o',
  occurredAt: 't',
});

/** Every Outbound a test made; closed after it, as its client's close() would. */
const made: Outbound[] = [];

// An Outbound left with its postTimeoutMs expiry timer armed (60 s here) held
// the Jest worker past its end ("A worker process has failed to exit
// gracefully", issue 13): failAll() is what the client's close() calls.
afterEach(() => {
  for (const outbound of made.splice(0)) outbound.failAll(new TransportClosedError());
});

function setup(maxQueueLength = 2, postTimeoutMs = 60_000, maxFrameBytes = 1000) {
  const logger = memoryLogger();
  const outbound = new Outbound(
    { scheduleFlush: () => undefined, limiter: new WarningLimiter(logger) },
    maxQueueLength,
    postTimeoutMs,
    maxFrameBytes,
  );
  made.push(outbound);
  /** The seqs of the event frames written since the last call. */
  const written = (): number[] => {
    const reader = new FrameReader(1 << 20);
    const seqs: number[] = [];
    for (const chunk of outbound.out) reader.push(chunk);
    outbound.out.length = 0;
    const r = new BodyReader();
    while (reader.next()) {
      expect(reader.type).toBe(FrameType.Event);
      seqs.push(r.reset(reader.buf, reader.start, reader.end).u48('seq'));
      reader.consume();
    }
    return seqs;
  };
  return { outbound, written, logger };
}

describe('ipc client outbound', () => {
  it('sends nothing before a handshake; then numbered frames up to the broker window; acks resolve the posts', async () => {
    const { outbound, written } = setup(2);
    const posted = outbound.publish([envelope(1), envelope(2), envelope(3)]);
    expect(written()).toEqual([]);
    outbound.welcomed(0, 2, 1000, true);
    outbound.resume();
    expect(written()).toEqual([1, 2]);
    expect(outbound.counters.resent).toBe(2);
    outbound.ackedUpTo(2);
    expect(written()).toEqual([3]);
    outbound.ackedUpTo(3);
    expect((await posted).map(r => r.ok)).toEqual([true, true, true]);
    expect(outbound.inFlight).toBe(0);
  });

  it('after a reconnect resends, in order, what the broker did not acknowledge', () => {
    const { outbound, written } = setup(4);
    void outbound.publish([envelope(1), envelope(2), envelope(3)]);
    outbound.welcomed(0, 4, 1000, true);
    outbound.resume();
    expect(written()).toEqual([1, 2, 3]);
    outbound.disconnected();
    // The same broker accepted 1 before the connection went.
    outbound.welcomed(1, 4, 1000, false);
    outbound.resume();
    expect(written()).toEqual([2, 3]);
  });

  it('a frame over the broker limit fails its post at once; the rest go', async () => {
    const { outbound, written } = setup(4, 60_000, 200);
    outbound.welcomed(0, 4, 200, true);
    outbound.resume();
    const posted = outbound.publish([envelope(1), envelope(2, 'x'.repeat(500))]);
    expect(written()).toEqual([1]);
    outbound.ackedUpTo(1);
    const results = await posted;
    expect(results[0].ok).toBe(true);
    expect(!results[1].ok && results[1].error).toBeInstanceOf(PayloadTooLargeError);
  });

  it('what could not be sent within postTimeoutMs fails with QueueFullError', async () => {
    const { outbound, written } = setup(1, 20);
    outbound.welcomed(0, 1, 1000, true);
    outbound.resume();
    const posted = outbound.publish([envelope(1), envelope(2)]);
    expect(written()).toEqual([1]);
    await waitFor(() => outbound.counters.rejected === 1);
    outbound.ackedUpTo(1);
    const results = await posted;
    expect(results[0].ok).toBe(true);
    expect(!results[1].ok && results[1].error).toBeInstanceOf(QueueFullError);
    outbound.failAll(new TransportClosedError());
  });

  it('failAll answers every post still waiting', async () => {
    const { outbound } = setup();
    const posted = outbound.publish([envelope(1), envelope(2)]);
    outbound.failAll(new TransportClosedError('bye'));
    const results = await posted;
    expect(results.every(r => !r.ok && r.error instanceof TransportClosedError)).toBe(true);
    await outbound.idle(10);
  });
});

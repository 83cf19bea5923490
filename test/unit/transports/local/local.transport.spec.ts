import {
  LocalTransport,
  TransportClosedError,
  silentLogger,
  systemClock,
  type Envelope,
  type PublishResult,
  type TransportStatus,
} from '../../../../lib/index.js';

const envelope: Envelope = {
  id: '1',
  source: 's',
  event: 'e',
  payload: '1',
  origin: 'here',
  occurredAt: new Date(0).toISOString(),
};

describe('LocalTransport', () => {
  it('reports connecting, connected, closed through its state machine, then completes', async () => {
    const transport = new LocalTransport();
    const states: TransportStatus['state'][] = [];
    let completed = false;
    transport.status$.subscribe({
      next: status => states.push(status.state),
      complete: () => (completed = true),
    });
    await transport.connect({
      deliver: () => undefined,
      logger: silentLogger,
      unique: { ttlMs: 1000, cacheSize: 8 },
      clock: systemClock,
    });
    await transport.close();
    await transport.close();
    expect(states).toEqual(['connecting', 'connected', 'closed']);
    expect(completed).toBe(true);
  });

  it('refuses to publish before connect and after close, and to connect once closed', async () => {
    const transport = new LocalTransport();
    const [before] = await transport.publish([envelope]);
    expect(before).toEqual({ ok: false, error: expect.any(TransportClosedError) });
    expect(before.ok === false && before.error.message).toBe('transport is not connected');
    await transport.close();
    const [after] = await transport.publish([envelope]);
    expect(after.ok === false && after.error.message).toBe('transport is closed');
    await expect(
      transport.connect({
        deliver: () => undefined,
        logger: silentLogger,
        unique: { ttlMs: 1000, cacheSize: 8 },
        clock: systemClock,
      }),
    ).rejects.toThrow(TransportClosedError);
  });

  it("gives each batch its own results: a caller changing one batch's list does not change the next", async () => {
    const transport = new LocalTransport();
    await transport.connect({
      deliver: () => undefined,
      logger: silentLogger,
      unique: { ttlMs: 1000, cacheSize: 8 },
      clock: systemClock,
    });
    const first = await transport.publish([envelope, envelope]);
    expect(first).toEqual([{ ok: true }, { ok: true }]);
    (first as PublishResult[])[0] = {
      ok: false,
      error: new TransportClosedError('changed by a caller'),
    };
    const second = await transport.publish([envelope, envelope]);
    expect(second).not.toBe(first);
    expect(second).toEqual([{ ok: true }, { ok: true }]);
    await transport.close();
  });
});

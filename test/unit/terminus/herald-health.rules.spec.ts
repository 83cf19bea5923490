import type { NativeRuntimeStats } from '../../../lib/ffi/native-runtime.js';
import { runtimeHealth, transportHealth } from '../../../lib/terminus/herald-health.rules.js';

const options = { maxLag: 100, maxHeartbeatAgeMs: 1000 };

function runtimeStats(overrides: Partial<NativeRuntimeStats>): NativeRuntimeStats {
  return {
    name: 'rt',
    path: '/lib/rt.so',
    inFlight: 0,
    queued: 0,
    idlePollers: 1,
    pollerSpinUs: 50,
    pollerSpins: 0,
    pollerSpinHits: 0,
    maxQueue: 100,
    calls: 0,
    answered: 0,
    failed: 0,
    refusedFull: 0,
    timedOut: 0,
    late: 0,
    unterminated: 0,
    references: 1,
    unloaded: false,
    ...overrides,
  };
}

describe('transportHealth', () => {
  it('is up when connected, with the ipc role', () => {
    expect(transportHealth('ipc', { state: 'connected', role: 'broker' }, {}, options)).toEqual({
      up: true,
      data: { transport: 'ipc', state: 'connected', role: 'broker' },
    });
  });

  it('is down with the reason of the state, or the state itself when there is none', () => {
    expect(
      transportHealth('redis', { state: 'reconnecting', reason: 'connection closed' }, {}, options),
    ).toEqual({
      up: false,
      data: { transport: 'redis', state: 'reconnecting', reason: 'connection closed' },
    });
    expect(transportHealth('pg', { state: 'connecting' }, {}, options).data.reason).toBe(
      'the pg transport is connecting',
    );
  });

  it('is down when the heartbeat is older than maxHeartbeatAgeMs (once stats expose it)', () => {
    const verdict = transportHealth(
      'pg',
      { state: 'connected' },
      { heartbeatAgeMs: 5000 },
      options,
    );
    expect(verdict.up).toBe(false);
    expect(verdict.data.reason).toBe('no heartbeat answer for 5000 ms (limit 1000 ms)');
  });

  it('is down when the group lag exceeds maxLag (once stats expose it), up at the limit', () => {
    expect(
      transportHealth('redis', { state: 'connected' }, { subscriberLag: 101 }, options),
    ).toEqual({
      up: false,
      data: {
        transport: 'redis',
        state: 'connected',
        lag: 101,
        reason: 'consumer lag 101 exceeds 100',
      },
    });
    expect(
      transportHealth('redis', { state: 'connected' }, { subscriberLag: 100 }, options).up,
    ).toBe(true);
  });

  it('shows the pg hub connect and disconnect counts', () => {
    const verdict = transportHealth(
      'pg',
      { state: 'connected' },
      { connectCount: 2, disconnectCount: 1, queued: 0 },
      options,
    );
    expect(verdict.data).toMatchObject({ connectCount: 2, disconnectCount: 1, queued: 0 });
  });
});

describe('runtimeHealth', () => {
  const share = { maxQueueShare: 0.5 };

  it('is up when every runtime is loaded and its queue below the share of maxQueue', () => {
    const verdict = runtimeHealth([{ name: 'a', stats: runtimeStats({ queued: 49 }) }], share);
    expect(verdict).toEqual({
      up: true,
      data: {
        runtimes: { a: { loaded: true, queued: 49, inFlight: 0, maxQueue: 100, refusedFull: 0 } },
      },
    });
  });

  it('is down naming the runtime: queue at the share, unloaded, or not found', () => {
    const verdict = runtimeHealth(
      [
        { name: 'a', stats: runtimeStats({ queued: 50 }) },
        { name: 'b', stats: runtimeStats({ unloaded: true }) },
        { name: 'c', error: 'FfiModule: no runtime named "c"' },
      ],
      share,
    );
    expect(verdict.up).toBe(false);
    expect(verdict.data.reason).toBe(
      'a: queue 50 of maxQueue 100 (limit 50%); b: unloaded; c: FfiModule: no runtime named "c"',
    );
  });
});

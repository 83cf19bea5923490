import type { Notification } from 'pg';
import { isAdvisory, type PgHubEvent } from '../../../../lib/pg/index.js';
import { PgConsumerSet } from '../../../../lib/transports/pg/pg.consumer-set.js';
import { TransportClosedError } from '../../../../lib/index.js';

/** The consumer set alone: the hub's part is a topic set and a connected flag. */
const setUp = () => {
  const listening = new Set<string>();
  const state = { connected: false, syncs: 0 };
  const errors: string[] = [];
  const set = new PgConsumerSet(
    {
      isConnected: () => state.connected,
      isListening: topic => listening.has(topic),
      syncListens: () => void state.syncs++,
    },
    { log: () => undefined, warn: m => void errors.push(m), error: m => void errors.push(m) },
    'unit',
  );
  const note = (channel: string, payload: string): Notification => ({
    channel,
    payload,
    processId: 1,
  });
  return { set, listening, state, errors, note };
};

describe('PgConsumerSet', () => {
  it('announces subscribe once LISTENed, once per consumer and topic, whatever hooks re-enter', () => {
    const { set, listening, state } = setUp();
    const log: string[] = [];
    let made = 0;
    const hook = (name: string) => (event: PgHubEvent) => {
      if (!isAdvisory(event)) return;
      log.push(`${name}:${event.value.action}`);
      // Each subscribe advisory makes the next consumer, up to 50.
      if (event.value.action === 'subscribe' && made < 50) {
        made++;
        set.add(hook(`c${made}`), false, ['t']);
      }
    };
    set.add(hook('c0'), false, ['t']);
    expect(log).toEqual([]);
    expect(set.wantedTopics()).toEqual(['t']);
    state.connected = true;
    listening.add('t');
    set.settle();
    expect(log).toHaveLength(51);
    expect(new Set(log).size).toBe(51);
    set.stop(new TransportClosedError('stopped'));
    expect(log.filter(line => line.endsWith(':stop'))).toHaveLength(51);
  });

  it('routes one deep-frozen event to every consumer of the channel; bad payloads counted', () => {
    const { set, errors, note } = setUp();
    const got: unknown[] = [];
    for (let i = 0; i < 2; i++)
      set.add((e: PgHubEvent) => void (isAdvisory(e) || got.push(e.value)), false, ['t']);
    set.receive(note('t', 'e1:{"a":{"b":1}}'));
    expect(got).toHaveLength(2);
    expect(got[0]).toBe(got[1]);
    expect(Object.isFrozen((got[0] as { a: object }).a)).toBe(true);
    set.receive(note('t', 'not-pg-hub'));
    set.receive(note('other', 'e'));
    expect(set.counters).toMatchObject({ rxEventCount: 3, rxErrorCount: 1, rxUnroutableCount: 1 });
    expect(errors[0]).toMatch(
      /^pg hub-notification-dropped: dropped a notification that is not a pg-hub event: .*\[hub=\S+ channel=t pid=1\]$/,
    );
  });

  it('counts and logs a hook that throws, and keeps going', () => {
    const { set, note, errors } = setUp();
    let after = 0;
    set.add(
      () => {
        throw new Error('boom');
      },
      false,
      ['t'],
    );
    set.add(() => void after++, false, ['t']);
    set.receive(note('t', 'e'));
    expect(after).toBe(1);
    expect(set.counters.hookErrorCount).toBe(1);
    expect(errors).toEqual([
      expect.stringMatching(/^pg hub-hook-failed: consumer hook failed: boom \[hub=/),
    ]);
  });
});

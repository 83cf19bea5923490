import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { InvalidEventError, SerializationError, TransportClosedError } from '../../../lib/index.js';
import {
  InvalidTopicError,
  PgHub,
  isAdvisory,
  type PgHubEvent,
  type PgKeyInput,
} from '../../../lib/pg/index.js';
import { PG_URL, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';

/**
 * pg-hub-n's own test scenarios (its test groups a-c), written here from
 * their behaviour against our API: start/stop races, an evil consumer, an
 * evil producer, round-trip shapes. (The daisy chain is in
 * pg.hub.faults.e2e.spec.ts.)
 */
describe('pg-hub scenarios on a real PostgreSQL', () => {
  let admin: pg.Pool;
  const hubs: PgHub[] = [];
  const topic = (prefix: string): string => uniqueName(prefix).toLowerCase().slice(0, 60);
  const makeHub = (): PgHub => {
    const hub = new PgHub({
      connectionString: PG_URL,
      reconnectMs: 50,
      applicationName: uniqueName('scen'),
    });
    hubs.push(hub);
    return hub;
  };

  beforeAll(() => {
    admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
  });
  afterEach(async () => {
    await Promise.all(hubs.splice(0).map(hub => hub.stop({ wait: false })));
  });
  afterAll(async () => {
    await admin.end();
  });

  it('start/stop races: stop before start refuses start; start then stop at once settles both', async () => {
    const a = makeHub();
    const stopped = a.stop();
    await expect(a.start()).rejects.toThrow(TransportClosedError);
    await stopped;
    expect(a.state).toBe('stopped');

    const b = makeHub();
    const started = b.start();
    const stopping = b.stop();
    const [start] = await Promise.allSettled([started, stopping]);
    // Either it connected first or the stop won: never left pending.
    expect(['fulfilled', 'rejected']).toContain(start.status);
    expect(b.state).toBe('stopped');
  });

  it('evil consumer: 16 consumers each try 7 mutations on every one of 16 events; all fail, all see the event intact', async () => {
    const t = topic('evil');
    const hub = makeHub();
    const mutations: ((event: PgHubEvent) => void)[] = [
      e => delete (e.value as { x?: number }).x,
      e => void ((e.value as { y: number }).y = -50),
      e => void (e.value as { list: number[] }).list.push(0),
      e => void ((e.key as bigint[])[0] = 222n),
      e => void ((e as { topic: string | null }).topic = null),
      e => void ((e as { key: unknown }).key = null),
      e => void ((e as { value: unknown }).value = null),
    ];
    let refused = 0;
    let intact = 0;
    let stops = 0;
    const subscribed: Promise<void>[] = [];
    for (let c = 0; c < 16; c++) {
      const consumer = hub.consumer(event => {
        if (isAdvisory(event)) {
          if (event.value.action === 'stop') stops++;
          return;
        }
        for (const mutate of mutations) {
          try {
            mutate(event);
          } catch {
            refused++;
          }
        }
        const value = event.value as { x: number; y: number; list: number[] };
        if (event.key.length === 3 && event.key[0] === 1n && value.x === value.y) intact++;
      });
      expect(() => consumer.subscribe(t, 'not-a-topic()')).toThrow(InvalidTopicError);
      expect(consumer.topics).toEqual([]);
      subscribed.push(consumer.subscribe(t));
    }
    await hub.start();
    await Promise.all(subscribed);
    for (let i = 0; i < 16; i++) await hub.notify(t, [1n, 2n, 3n], { x: i, y: i, list: [i] });
    await waitFor(() => intact === 256);
    expect(refused).toBe(256 * mutations.length);
    expect(hub.stats().hookErrorCount).toBe(0);
    await hub.stop();
    expect(stops).toBe(16);
  });

  it('evil producer: bad notifies throw at the call and send nothing; malformed payloads from outside are counted, never delivered', async () => {
    const t = topic('producer');
    const hub = makeHub();
    const got: PgHubEvent[] = [];
    await hub.consumer(event => void (isAdvisory(event) || got.push(event)), t).subscribe();
    await hub.start();
    const bad: [string, PgKeyInput, unknown, new (...args: never[]) => Error][] = [
      [t, null, { a: 1n }, SerializationError],
      [t, ['x', 'y'] as never, {}, InvalidEventError],
      [t, [1.1, 1.2], {}, InvalidEventError],
      [t, 1.3, {}, InvalidEventError],
      [t, [null] as never, {}, InvalidEventError],
      [t, [2n ** 64n], {}, InvalidEventError],
      ['a-b-c', 1n, true, InvalidTopicError],
      ['()', 1n, true, InvalidTopicError],
      ['', 1n, true, InvalidTopicError],
    ];
    for (const [badTopic, key, value, type] of bad) {
      expect(() => hub.notify(badTopic, key, value)).toThrow(type);
    }
    const attacks = [
      'eaksdjlkjasdlkjasd',
      'e1,k,,,:{}',
      'e1,2,3:{x:1n}',
      'e1,2,3:[1n]',
      'e1:[{()=>0}]',
    ];
    for (const payload of attacks) await admin.query('SELECT pg_notify($1, $2)', [t, payload]);
    await hub.notify(t);
    await waitFor(() => got.length === 1);
    expect(got[0].value).toBeNull();
    expect(hub.stats()).toMatchObject({ rxErrorCount: attacks.length, notifyCount: 1 });
  });

  it('round-trip shapes: every key and value shape comes back equal', async () => {
    const t = topic('shapes');
    const hub = makeHub();
    const int64 = (): bigint => BigInt.asIntN(64, BigInt('0x' + randomBytes(8).toString('hex')));
    const shapes: [PgKeyInput, unknown][] = [
      [null, null],
      [[], null],
      [[], {}],
      [10000000000n, {}],
      [10000000001n, true],
      [10000000000n, 'on a dark desert highway'],
      [
        [10000000000n, 10000000000n, 10000000000n],
        ['{}', '$', 'llm', 'forthright'],
      ],
      [[10000000000n, -1n, 0n], 12345],
      [
        [10000000000, 10000000000n, 5000000000n + 5000000000n],
        ['$$', '\\', '"', 'é😀'],
      ],
      [
        [2n ** 63n - 1n, -(2n ** 63n)],
        { w: { x: 'y' }, a: 0, b: { e: ['f', 'k'], c: 'd' }, z: null },
      ],
      [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], { deep: [{ a: { b: { c: { d: { e: { f: null } } } } } }] }],
    ];
    for (let j = 0; j < 10; j++) {
      const keys = Array.from({ length: Math.floor(Math.random() * 200) }, int64);
      const value: Record<string, number> = {};
      for (let i = 0; i < Math.random() * 100; i++)
        value[`a${i}`] = Math.floor(Math.random() * 1e5);
      shapes.push([keys, value]);
    }
    const got: PgHubEvent[] = [];
    await hub.consumer(event => void (isAdvisory(event) || got.push(event)), t).subscribe();
    await hub.start();
    for (const [key, value] of shapes) await hub.notify(t, key, value);
    await waitFor(() => got.length === shapes.length);
    got.forEach((event, i) => {
      const [key, value] = shapes[i];
      const keys = key === null || key === undefined ? [] : Array.isArray(key) ? key : [key];
      expect(event.key).toEqual(keys.map(part => BigInt(part as bigint)));
      expect(event.value).toEqual(value);
    });
  });
});

import {
  type UniqueOptions,
  InvalidOptionsError,
  EventBus,
  LocalTransport,
  UniqueCache,
  silentLogger,
  type Clock,
} from '../../../lib/index.js';
import { waitFor } from '../../helpers/wait-for.js';

class ManualClock implements Clock {
  constructor(public time = 1_000_000) {}
  now(): number {
    return this.time;
  }
}

describe('UniqueCache', () => {
  it('drops repeats within the TTL and accepts the key again after it (the original events.t TEST 3)', () => {
    const clock = new ManualClock();
    const cache = new UniqueCache({ ttlMs: 40 }, clock);
    const handled: number[] = [];
    const post = (n: number): void => void (cache.claim('k') && handled.push(n));
    post(1);
    post(2);
    clock.time += 39;
    post(3);
    clock.time += 1;
    post(4);
    post(5);
    clock.time += 100;
    post(6);
    expect(handled).toEqual([1, 4, 6]);
  });

  it('defaults to 2000 ms and 1024 keys', () => {
    const cache = new UniqueCache();
    expect(cache.ttlMs).toBe(2000);
    expect(cache.cacheSize).toBe(1024);
  });

  it('is bounded: the least recently seen key is evicted first', () => {
    const clock = new ManualClock();
    const cache = new UniqueCache({ ttlMs: 1000, cacheSize: 2 }, clock);
    expect(cache.claim('a')).toBe(true);
    expect(cache.claim('b')).toBe(true);
    expect(cache.claim('a')).toBe(false); // a is now the most recently seen
    expect(cache.claim('c')).toBe(true); // evicts b
    expect(cache.size).toBe(2);
    expect(cache.claim('a')).toBe(false);
    expect(cache.claim('b')).toBe(true);
  });

  it('drives unique posts on the local transport through the bus clock', async () => {
    const clock = new ManualClock();
    const bus = new EventBus({
      transport: new LocalTransport(),
      clock,
      unique: { ttlMs: 50 },
      logger: silentLogger,
    });
    bus.start();
    const runs: number[] = [];
    bus.register(data => void runs.push(data as number), 'job');
    await bus.post('job', 'run', 1, { unique: 'nightly' });
    await bus.post('job', 'run', 2, { unique: 'nightly' });
    clock.time += 50;
    await bus.post('job', 'run', 3, { unique: 'nightly' });
    await bus.post('job', 'other', 4, { unique: 'different' });
    await waitFor(() => runs.length === 3);
    expect(runs).toEqual([1, 3, 4]);
    expect(bus.stats().transport.duplicates).toBe(1);
    await bus.close();
  });
});

describe('unique options of the bus (as the original refuses them)', () => {
  it.each([
    [{ ttlMs: 0 }, 'EventBus: unique: ttlMs must be a finite number > 0 (got 0, a number)'],
    [{ ttlMs: -1 }, 'EventBus: unique: ttlMs must be a finite number > 0 (got -1, a number)'],
    [{ ttlMs: '1' }, 'EventBus: unique: ttlMs must be a finite number > 0 (got "1", a string)'],
    [{ cacheSize: 1.5 }, 'EventBus: unique: cacheSize must be an integer >= 1 (got 1.5, a number)'],
    [{ ttl: 5 }, "EventBus: unique: unknown option 'ttl'"],
  ])('refuses %j at construction, naming the value and its type', (unique, message) => {
    const make = (): EventBus =>
      new EventBus({ transport: new LocalTransport(), unique: unique as UniqueOptions });
    expect(make).toThrow(InvalidOptionsError);
    expect(make).toThrow(message);
  });
});

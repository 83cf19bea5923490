import {
  BusDrainingError,
  EventBus,
  InvalidEventError,
  LocalTransport,
  TransportClosedError,
  silentLogger,
  type HeraldEvent,
} from '../../../lib/index.js';
import { waitFor } from '../../helpers/wait-for.js';

/**
 * `postLocal` without options runs in one function (issue 16: the checks,
 * the event and the dispatcher's short path inline); these cases prove it
 * keeps every outcome of the general path: counts, order, idle, ids, shape
 * and the typed errors.
 */
describe('EventBus.postLocal without options (the inline path)', () => {
  const buses: EventBus[] = [];
  const make = (): EventBus => {
    const bus = new EventBus({ transport: new LocalTransport(), logger: silentLogger });
    buses.push(bus);
    return bus;
  };
  afterEach(async () => {
    await Promise.all(buses.splice(0).map(bus => bus.close({ timeoutMs: 1000 })));
  });

  it('counts a lone handler that returns, throws or returns a promise, and none or several, as the general path does', async () => {
    const bus = make();
    await bus.connect();
    bus.start();
    const seen: string[] = [];
    let settle!: () => void;
    bus.register((_data, e) => void seen.push(e.event), 'p', 'ok');
    bus.register(
      () => {
        throw new Error('boom');
      },
      'p',
      'throws',
    );
    bus.register(() => new Promise<void>(resolve => (settle = resolve)), 'p', 'async');
    bus.register((_data, e) => void seen.push(`${e.event}1`), 'p', 'two');
    bus.register((_data, e) => void seen.push(`${e.event}2`), 'p', 'two');
    for (const event of ['ok', 'throws', 'async', 'none', 'two', 'ok']) bus.postLocal('p', event);
    expect(bus.stats().postedLocal).toBe(6);
    let idle = false;
    const waiting = bus.whenIdle({ timeoutMs: 5000 }).then(() => (idle = true));
    await waitFor(() => settle !== undefined);
    expect(idle).toBe(false);
    settle();
    await waiting;
    // The promise held its runner slot: what came after ran once it settled, in order.
    expect(seen).toEqual(['ok', 'two1', 'two2', 'ok']);
    expect(bus.stats()).toMatchObject({ postedLocal: 6, unhandled: 1 });
    expect(bus.stats()).toMatchObject({ handled: 5, failed: 1, running: 0, inFlight: 0 });
  });

  it('runs an event posted from a handler after that handler returns, in posting order', async () => {
    const bus = make();
    await bus.connect();
    bus.start();
    const seen: string[] = [];
    bus.register(
      () => {
        seen.push('outer start');
        bus.postLocal('n', 'inner');
        bus.postLocal('n', 'inner2');
        seen.push('outer end');
      },
      'n',
      'outer',
    );
    bus.register((_data, e) => void seen.push(e.event), 'n', 'inner', 'inner2');
    bus.postLocal('n', 'outer');
    await bus.whenIdle({ timeoutMs: 5000 });
    expect(seen).toEqual(['outer start', 'outer end', 'inner', 'inner2']);
  });

  it('gives unique ids across id blocks and the same event as a post with headers', async () => {
    const bus = make();
    await bus.connect();
    bus.start();
    const events: HeraldEvent[] = [];
    bus.register((_data, e) => void events.push(e), 'ids');
    for (let i = 0; i < 600; i++) bus.postLocal('ids', 'x', i);
    bus.postLocal('ids', 'y', 600, { headers: { h: 'v' } });
    await bus.whenIdle({ timeoutMs: 5000 });
    expect(new Set(events.map(e => e.id)).size).toBe(601);
    const [plain, withHeaders] = [events[0], events[600]];
    expect(Object.keys(plain)).toEqual(Object.keys(withHeaders));
    expect(plain).toMatchObject({ source: 'ids', event: 'x', data: 0, local: true, attempt: 1 });
    expect(plain.headers).toEqual({});
    expect(Object.isFrozen(plain.headers)).toBe(true);
    expect(plain.origin).toBe(withHeaders.origin);
    expect(typeof plain.occurredAt).toBe('string');
  });

  it('takes the general path, with the same outcomes, when a wildcard pattern is registered or none matches', async () => {
    const exact = make();
    const wild = make();
    for (const bus of [exact, wild]) {
      await bus.connect();
      bus.start();
    }
    const seen: Record<string, string[]> = { exact: [], wild: [] };
    exact.register((_data, e) => void seen.exact.push(`${e.source}/${e.event}`), 'w', 'a');
    wild.register((_data, e) => void seen.wild.push(`${e.source}/${e.event}`), 'w', 'a');
    // Only the second bus has a wildcard slot: its lookups leave the inline path.
    wild.register(() => undefined, 'other');
    for (const bus of [exact, wild]) {
      bus.postLocal('w', 'a', 1);
      bus.postLocal('w', 'b', 2);
      bus.postLocal('nobody', 'a', 3);
    }
    expect(seen.exact).toEqual(['w/a']);
    expect(seen.wild).toEqual(['w/a']);
    for (const bus of [exact, wild]) {
      expect(bus.stats()).toMatchObject({ postedLocal: 3, handled: 1, unhandled: 2, inFlight: 0 });
    }
  });

  it('resolves an idle wait begun inside an inline handler once it returns, and runs what it posted first', async () => {
    const bus = make();
    await bus.connect();
    bus.start();
    const seen: string[] = [];
    let idle: Promise<void> | undefined;
    bus.register(
      () => {
        idle = bus.whenIdle({ timeoutMs: 5000 }).then(() => void seen.push('idle'));
        bus.postLocal('i', 'inner');
        seen.push('outer');
      },
      'i',
      'outer',
    );
    bus.register(() => void seen.push('inner'), 'i', 'inner');
    bus.postLocal('i', 'outer');
    // The inner post waited for the outer handler's turn, then ran in it.
    expect(seen).toEqual(['outer', 'inner']);
    await idle;
    expect(seen).toEqual(['outer', 'inner', 'idle']);
    expect(bus.stats()).toMatchObject({ postedLocal: 2, handled: 2, queued: 0, inFlight: 0 });
  });

  it('throws the typed errors, names first, then the drain and the closed bus', async () => {
    const bus = make();
    await bus.connect();
    bus.start();
    expect(() => bus.postLocal('*', 'x')).toThrow(
      new InvalidEventError("source '*' is a pattern and cannot be posted"),
    );
    expect(() => bus.postLocal('s', '')).toThrow(
      new InvalidEventError('event must be a non-empty string'),
    );
    expect(() => bus.postLocal(1 as never, 'x')).toThrow(
      new InvalidEventError('source must be a non-empty string'),
    );
    bus.beginDrain();
    expect(() => bus.postLocal('s', 'x')).toThrow(BusDrainingError);
    expect(() => bus.postLocal('s', '*')).toThrow(InvalidEventError);
    expect(bus.stats().refusedDraining).toBe(1);
    await bus.close({ timeoutMs: 1000 });
    expect(() => bus.postLocal('s', 'x')).toThrow(TransportClosedError);
    expect(() => bus.postLocal('', 'x')).toThrow(InvalidEventError);
    expect(bus.stats().postedLocal).toBe(0);
  });

  it('refuses names a handler is registered for once draining, names still first', async () => {
    const bus = make();
    await bus.connect();
    bus.start();
    bus.register(() => undefined, 's', 'x');
    bus.beginDrain();
    // The inline lookup finds the handler: the bus's state still refuses.
    expect(() => bus.postLocal('s', 'x')).toThrow(BusDrainingError);
    expect(() => bus.postLocal('s', '')).toThrow(InvalidEventError);
    expect(bus.stats()).toMatchObject({ postedLocal: 0, handled: 0, refusedDraining: 1 });
  });
});

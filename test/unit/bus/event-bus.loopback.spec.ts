import { BehaviorSubject } from 'rxjs';
import { UuidSource } from '../../../lib/bus/event-bus.ids.js';
import { LoopbackWatch } from '../../../lib/bus/event-bus.loopback.js';
import {
  EventBus,
  silentLogger,
  type Envelope,
  type PublishResult,
  type Transport,
  type TransportContext,
  type TransportFeatures,
} from '../../../lib/index.js';

const NETWORK: TransportFeatures = {
  reach: 'network',
  guarantee: 'at-most-once',
  ordering: 'per-sender',
  uniqueScope: 'network',
  redelivers: false,
  loopback: true,
  persistent: false,
};

function envelope(id: string, unique?: string): Envelope {
  return { id, source: 's', event: 'e', payload: '1', origin: 'o', occurredAt: '', unique };
}

describe('LoopbackWatch', () => {
  it('watches the bus ids of several blocks until each arrives, once each', () => {
    const watch = new LoopbackWatch(NETWORK, 10_000);
    const ids = new UuidSource();
    const posted = Array.from({ length: 600 }, () => ids.uuid());
    for (const id of posted) expect(watch.expect(envelope(id))).toBe(true);
    expect(watch.size).toBe(600);
    // The same id twice is watched once.
    watch.expect(envelope(posted[0]));
    expect(watch.size).toBe(600);
    // Arrivals are copies read off the wire, not the posted strings.
    for (const id of posted.slice(0, 300)) watch.arrived(envelope(JSON.parse(JSON.stringify(id))));
    expect(watch.size).toBe(300);
    // A repeat, another process's id and ids that only look alike change nothing.
    watch.arrived(envelope(posted[0]));
    watch.arrived(envelope(new UuidSource().uuid()));
    watch.arrived(envelope(posted[400].slice(0, 34) + 'zz'));
    watch.arrived(envelope(posted[400].slice(0, 34) + posted[400].slice(34).toUpperCase() + 'x'));
    expect(watch.size).toBe(300);
    for (const id of posted.slice(300).reverse()) watch.arrived(envelope(id));
    expect(watch.size).toBe(0);
  });

  it('holds ids of any other form too', () => {
    const watch = new LoopbackWatch(NETWORK, 10);
    const bus = new UuidSource().uuid();
    for (const id of ['a', bus.toUpperCase(), bus.slice(0, 34) + 'g0', bus]) {
      watch.expect(envelope(id));
    }
    expect(watch.size).toBe(4);
    watch.forget(bus.toUpperCase());
    watch.arrived(envelope('a'));
    watch.arrived(envelope(bus.slice(0, 34) + 'g0'));
    expect(watch.size).toBe(1);
    watch.arrived(envelope(bus));
    expect(watch.size).toBe(0);
  });

  it('is bounded: past the bound the oldest is forgotten', () => {
    const watch = new LoopbackWatch(NETWORK, 300);
    const ids = new UuidSource();
    const posted = Array.from({ length: 310 }, () => ids.uuid());
    for (const id of posted) watch.expect(envelope(id));
    expect(watch.size).toBe(300);
    // The first ten went; the eleventh is still awaited.
    for (const id of posted.slice(0, 10)) watch.arrived(envelope(id));
    expect(watch.size).toBe(300);
    watch.arrived(envelope(posted[10]));
    expect(watch.size).toBe(299);
  });

  it('watches nothing on a transport that stays in the process, nor unique posts', () => {
    const local = new LoopbackWatch({ ...NETWORK, reach: 'process' }, 10);
    expect(local.expect(envelope(new UuidSource().uuid()))).toBe(false);
    const network = new LoopbackWatch(NETWORK, 10);
    expect(network.expect(envelope(new UuidSource().uuid(), 'key'))).toBe(false);
    expect(local.size + network.size).toBe(0);
  });

  it('starts afresh after clear()', () => {
    const watch = new LoopbackWatch(NETWORK, 10);
    const ids = new UuidSource();
    const first = ids.uuid();
    watch.expect(envelope(first));
    watch.clear();
    expect(watch.size).toBe(0);
    const second = ids.uuid();
    watch.expect(envelope(second));
    watch.arrived(envelope(first));
    expect(watch.size).toBe(1);
    watch.arrived(envelope(second));
    expect(watch.size).toBe(0);
  });
});

/**
 * A real transport of our own that leaves the process: it accepts or
 * refuses posts as told, and hands back only the copies it is asked to.
 */
class WireTransport implements Transport {
  readonly name = 'wire';
  readonly features = NETWORK;
  readonly status$ = new BehaviorSubject({ state: 'connected' as const });
  context?: TransportContext;
  published: Envelope[] = [];
  refuse = false;
  async connect(context: TransportContext): Promise<void> {
    this.context = context;
  }
  async publish(batch: readonly Envelope[]): Promise<readonly PublishResult[]> {
    if (this.refuse) return batch.map(() => ({ ok: false as const, error: new Error('refused') }));
    this.published.push(...batch);
    return batch.map(() => ({ ok: true as const }));
  }
  /** Hands back the copies published so far, as a wire would (new strings). */
  deliverAll(): void {
    for (const sent of this.published.splice(0)) {
      this.context!.deliver({
        envelope: JSON.parse(JSON.stringify(sent)) as Envelope,
        attempt: 1,
        settle: () => undefined,
      });
    }
  }
  stats(): Record<string, number> {
    return {};
  }
  async close(): Promise<void> {}
}

describe('EventBus over a transport that leaves the process', () => {
  const make = (): { bus: EventBus; transport: WireTransport } => {
    const transport = new WireTransport();
    const bus = new EventBus({ transport, logger: silentLogger });
    bus.start();
    return { bus, transport };
  };

  it('is idle only once its own posts came back, and never waits for one the transport refused', async () => {
    const { bus, transport } = make();
    const handled: unknown[] = [];
    bus.register(data => void handled.push(data), 's', 'e');
    await bus.post('s', 'e', 1);
    await expect(bus.whenIdle({ timeoutMs: 20 })).rejects.toThrow(
      '1 own post(s) not back from the transport yet',
    );
    transport.deliverAll();
    await bus.whenIdle({ timeoutMs: 1000 });
    expect(handled).toEqual([1]);

    transport.refuse = true;
    await expect(bus.post('s', 'e', 2)).rejects.toThrow('refused');
    await bus.whenIdle({ timeoutMs: 1000 });
    expect(handled).toEqual([1]);
    await bus.close({ timeoutMs: 1000 });
  });
});

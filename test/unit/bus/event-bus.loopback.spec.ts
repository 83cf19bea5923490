import { BehaviorSubject } from 'rxjs';
import {
  EventBus,
  IdleTimeoutError,
  silentLogger,
  type Delivery,
  type Envelope,
  type PublishResult,
  type Transport,
  type TransportContext,
  type TransportStatus,
} from '../../../lib/index.js';
import { waitFor } from '../../helpers/wait-for.js';

/**
 * One "network" several buses of this process reach, each through its own
 * {@link NetTransport}: every publish is delivered to every bus, later (a
 * macrotask), except what the test holds back.
 */
class Net {
  readonly members: NetTransport[] = [];
  /** Copies not delivered yet, while `holding` says so. */
  readonly held: (() => void)[] = [];
  holding: (envelope: Envelope, to: NetTransport) => boolean = () => false;

  send(envelope: Envelope, attempt = 1): void {
    for (const member of this.members) {
      const deliver = (): void => member.deliver({ envelope, attempt, settle: () => undefined });
      if (this.holding(envelope, member)) this.held.push(deliver);
      else setImmediate(deliver);
    }
  }

  release(): void {
    for (const deliver of this.held.splice(0)) deliver();
  }
}

class NetTransport implements Transport {
  readonly name = 'net';
  readonly features = {
    reach: 'network',
    guarantee: 'at-least-once',
    ordering: 'per-sender',
    uniqueScope: 'network',
    redelivers: true,
    loopback: true,
    persistent: false,
  } as const;
  readonly status$ = new BehaviorSubject<TransportStatus>({ state: 'connecting' });
  private context?: TransportContext;
  /** Events whose publish this transport refuses. */
  readonly refuse = new Set<string>();

  constructor(private readonly net: Net) {
    net.members.push(this);
  }

  async connect(context: TransportContext): Promise<void> {
    this.context = context;
    this.status$.next({ state: 'connected' });
  }

  deliver(delivery: Delivery): void {
    this.context?.deliver(delivery);
  }

  async publish(batch: readonly Envelope[]): Promise<readonly PublishResult[]> {
    return batch.map(envelope => {
      if (this.refuse.has(envelope.event)) return { ok: false, error: new Error('refused') };
      this.net.send(envelope);
      return { ok: true };
    });
  }

  stats(): Record<string, number> {
    return {};
  }

  async close(): Promise<void> {
    this.context = undefined;
    this.status$.next({ state: 'closed' });
    this.status$.complete();
  }
}

function busOn(net: Net): { bus: EventBus; transport: NetTransport; seen: string[] } {
  const transport = new NetTransport(net);
  const bus = new EventBus({ transport, logger: silentLogger });
  const seen: string[] = [];
  bus.register((data, event) => seen.push(`${String(data)}@${event.origin}`), 'net');
  bus.start();
  return { bus, transport, seen };
}

async function idleWithin(bus: EventBus, timeoutMs: number): Promise<true | string> {
  return bus.whenIdle({ timeoutMs }).then(
    () => true as const,
    (error: unknown) => {
      if (error instanceof IdleTimeoutError) return error.message;
      throw error;
    },
  );
}

describe('EventBus: own posts coming back (loopback) with two buses in one process', () => {
  let net: Net;
  let a: ReturnType<typeof busOn>;
  let b: ReturnType<typeof busOn>;

  beforeEach(async () => {
    net = new Net();
    a = busOn(net);
    b = busOn(net);
    await Promise.all([a.bus.connect(), b.bus.connect()]);
  });

  afterEach(async () => {
    net.release();
    await Promise.all([a.bus.close({ timeoutMs: 100 }), b.bus.close({ timeoutMs: 100 })]);
  });

  it('gives each bus of the process its own origin, carried by its posts', async () => {
    expect(a.bus.origin).not.toBe(b.bus.origin);
    // Both start with the process's origin: the same host, pid and instance.
    expect(a.bus.origin.slice(0, a.bus.origin.lastIndexOf('/'))).toBe(
      b.bus.origin.slice(0, b.bus.origin.lastIndexOf('/')),
    );
    await a.bus.post('net', 'e', 'from-a');
    await b.bus.post('net', 'e', 'from-b');
    await waitFor(() => a.seen.length === 2 && b.seen.length === 2);
    // Sender included: every bus handles both posts, its own among them.
    for (const { seen } of [a, b]) {
      expect([...seen].sort()).toEqual([`from-a@${a.bus.origin}`, `from-b@${b.bus.origin}`]);
    }
  });

  it("is idle only once its own posts came back: the other bus's copies never stand in for them", async () => {
    // Every copy of a's posts is held on the way back, to a and to b alike.
    net.holding = envelope => envelope.origin === a.bus.origin;
    await Promise.all([1, 2, 3].map(i => a.bus.post('net', 'e', `a${i}`)));
    await Promise.all([1, 2, 3].map(i => b.bus.post('net', 'e', `b${i}`)));
    // b's three posts reach a too, and are handled there...
    await waitFor(() => a.seen.length === 3 && b.seen.length === 3);
    expect(await idleWithin(b.bus, 5000)).toBe(true);
    // ...but a still waits for exactly its own three.
    expect(await idleWithin(a.bus, 50)).toContain('3 own post(s) not back from the transport yet');
    net.release();
    expect(await idleWithin(a.bus, 5000)).toBe(true);
    expect(a.seen).toHaveLength(6);
    expect(a.bus.stats()).toMatchObject({ posted: 3, delivered: 6, handled: 6 });
    expect(b.bus.stats()).toMatchObject({ posted: 3, delivered: 6, handled: 6 });
  });

  it('does not count a redelivered copy as another own post back', async () => {
    net.holding = (envelope, to) => envelope.origin === a.bus.origin && to === b.transport;
    const copies: Envelope[] = [];
    const send = net.send.bind(net);
    net.send = (envelope, attempt) => {
      copies.push(envelope);
      send(envelope, attempt);
    };
    await a.bus.post('net', 'e', 'one');
    await waitFor(() => a.seen.length === 1);
    // The first post came back; the second is held on its way to a too.
    net.holding = envelope => envelope.origin === a.bus.origin;
    await a.bus.post('net', 'e', 'two');
    // A redelivery (attempt 2) of the first is not the second coming back.
    a.transport.deliver({ envelope: copies[0], attempt: 2, settle: () => undefined });
    await waitFor(() => a.seen.length === 2);
    expect(await idleWithin(a.bus, 50)).toContain('1 own post(s) not back from the transport yet');
    net.release();
    expect(await idleWithin(a.bus, 5000)).toBe(true);
  });

  it('stops waiting for a post the transport refused', async () => {
    a.transport.refuse.add('refused');
    await expect(a.bus.post('net', 'refused', 'x')).rejects.toThrow('refused');
    expect(await idleWithin(a.bus, 5000)).toBe(true);
    expect(a.bus.stats().publishFailed).toBe(1);
  });
});

import { BehaviorSubject } from 'rxjs';
import {
  BusDrainingError,
  EventBus,
  InvalidEventError,
  LocalTransport,
  PayloadTooLargeError,
  QueueFullError,
  SerializationError,
  TransportClosedError,
  jsonCodec,
  silentLogger,
  type Codec,
  type Envelope,
  type EventBusOptions,
  type PublishResult,
  type Transport,
  type TransportContext,
} from '../../../lib/index.js';
import { waitFor } from '../../helpers/wait-for.js';

/** The strict JSON codec, counting its encodes: the short path must encode once per post, as the general one does. */
function countingCodec(): Codec & { encodes: number } {
  const codec = {
    encodes: 0,
    encode(data: unknown): string {
      codec.encodes++;
      return jsonCodec.encode(data);
    },
    decode: (payload: string): unknown => jsonCodec.decode(payload),
  };
  return codec;
}

/** A connected in-process transport of our own that declares a payload limit and keeps what it was given. */
class LimitedTransport implements Transport {
  readonly name = 'limited';
  readonly features = {
    reach: 'process' as const,
    guarantee: 'once' as const,
    ordering: 'global' as const,
    uniqueScope: 'process' as const,
    redelivers: false,
    loopback: false,
    persistent: false,
    maxPayloadBytes: 64,
  };
  readonly status$ = new BehaviorSubject({ state: 'connected' as const });
  published: Envelope[] = [];
  async connect(_context: TransportContext): Promise<void> {}
  async publish(batch: readonly Envelope[]): Promise<readonly PublishResult[]> {
    this.published.push(...batch);
    return batch.map(() => ({ ok: true as const }));
  }
  stats(): Record<string, number> {
    return { published: this.published.length };
  }
  async close(): Promise<void> {}
}

/**
 * `post` without options, on a bus without schemas or telemetry, runs in
 * one function (issue 16: the names, the payload and the envelope inline);
 * every other case takes the general path. These cases prove the short
 * path keeps the general path's outcomes: the envelope's fields and their
 * order, one encode per post, and the typed errors in the same order.
 */
describe('EventBus.post without options (the inline path)', () => {
  const buses: EventBus[] = [];
  const connected = async (options: Partial<EventBusOptions> = {}): Promise<EventBus> => {
    const bus = new EventBus({ transport: new LocalTransport(), logger: silentLogger, ...options });
    buses.push(bus);
    await bus.connect();
    bus.start();
    return bus;
  };
  afterEach(async () => {
    await Promise.all(buses.splice(0).map(bus => bus.close({ timeoutMs: 1000 })));
  });

  it('delivers envelopes shaped as the factory makes them (same fields, same order), each with its own id', async () => {
    const transport = new LimitedTransport();
    const bus = new EventBus({ transport, logger: silentLogger });
    buses.push(bus);
    await bus.connect();
    const receipts = await Promise.all([
      bus.post('orders', 'created', { n: 1 }),
      bus.post('orders', 'created', [1, 'a']),
      bus.post('orders', 'paid'),
    ]);
    const made = bus.envelope('orders', 'created', { n: 1 });
    expect(transport.published).toHaveLength(3);
    for (const envelope of transport.published) {
      expect(Object.keys(envelope)).toEqual(Object.keys(made));
      expect(envelope.origin).toBe(bus.origin);
      expect(envelope.key).toBeUndefined();
      expect(envelope.unique).toBeUndefined();
      expect(envelope.headers).toBeUndefined();
      expect(Number.isNaN(Date.parse(envelope.occurredAt))).toBe(false);
    }
    expect(transport.published.map(e => e.payload)).toEqual(['{"n":1}', '[1,"a"]', '']);
    expect(receipts.map(r => r.id)).toEqual(transport.published.map(e => e.id));
    expect(new Set(receipts.map(r => r.id)).size).toBe(3);
    expect(bus.stats().posted).toBe(3);
  });

  it('hands each post to the handlers once, with its data, and settles it', async () => {
    const bus = await connected();
    const seen: unknown[] = [];
    bus.register((data, e) => void seen.push([e.source, e.event, data]), 'a', 'x');
    const receipt = await bus.post('a', 'x', { v: 1 });
    await waitFor(() => seen.length === 1);
    expect(seen).toEqual([['a', 'x', { v: 1 }]]);
    expect(receipt.id).toEqual(expect.any(String));
    await bus.whenIdle({ timeoutMs: 5000 });
    expect(bus.stats()).toMatchObject({ posted: 1, handled: 1, acked: 1 });
  });

  it('rejects bad names with InvalidEventError before the data is looked at (names first)', async () => {
    const codec = countingCodec();
    const bus = await connected({ codec });
    const bigint = 1n;
    await expect(bus.post('', 'x', bigint)).rejects.toThrow(InvalidEventError);
    await expect(bus.post('*', 'x', bigint)).rejects.toThrow(InvalidEventError);
    await expect(bus.post('a', '', bigint)).rejects.toThrow(InvalidEventError);
    await expect(bus.post('a', '*', bigint)).rejects.toThrow(InvalidEventError);
    await expect(bus.post(1 as unknown as string, 'x')).rejects.toThrow(InvalidEventError);
    await expect(bus.post('a', undefined as unknown as string)).rejects.toThrow(InvalidEventError);
    expect(codec.encodes).toBe(0);
    // One-character names other than '*' are names.
    await expect(bus.post('a', 'b', 1)).resolves.toHaveProperty('id');
    expect(codec.encodes).toBe(1);
    expect(bus.stats().posted).toBe(1);
  });

  it('rejects data the codec refuses, encoding it once, and counts nothing', async () => {
    const codec = countingCodec();
    const bus = await connected({ codec });
    await expect(bus.post('a', 'x', { n: 1n })).rejects.toThrow(SerializationError);
    expect(codec.encodes).toBe(1);
    expect(bus.stats().posted).toBe(0);
  });

  it("checks the transport's payload limit in UTF-8 bytes, encoding once", async () => {
    const codec = countingCodec();
    const transport = new LimitedTransport();
    const bus = new EventBus({ transport, logger: silentLogger, codec });
    buses.push(bus);
    await bus.connect();
    await expect(bus.post('t', 'big', 'x'.repeat(100))).rejects.toThrow(PayloadTooLargeError);
    await expect(bus.post('t', 'big', 'é'.repeat(40))).rejects.toThrow(PayloadTooLargeError);
    // Over a third of the limit in UTF-16 units, within it in bytes: counted, accepted.
    await expect(bus.post('t', 'small', 'x'.repeat(30))).resolves.toHaveProperty('id');
    await expect(bus.post('t', 'small', 'é'.repeat(20))).resolves.toHaveProperty('id');
    expect(codec.encodes).toBe(4);
    expect(transport.published.map(e => e.event)).toEqual(['small', 'small']);
  });

  it('refuses beyond maxPending with QueueFullError, as the general path does', async () => {
    const bus = await connected({ maxPending: 2 });
    const posts = [bus.post('q', 'a'), bus.post('q', 'b'), bus.post('q', 'c')];
    await expect(posts[2]).rejects.toThrow(QueueFullError);
    await expect(Promise.all(posts.slice(0, 2))).resolves.toHaveLength(2);
  });

  it('refuses once draining or closed, names still first', async () => {
    const bus = await connected();
    bus.beginDrain();
    await expect(bus.post('a', 'x')).rejects.toThrow(BusDrainingError);
    await expect(bus.post('', 'x')).rejects.toThrow(InvalidEventError);
    await bus.close({ timeoutMs: 1000 });
    await expect(bus.post('a', 'x')).rejects.toThrow(TransportClosedError);
  });

  it('waits for the transport when posted before connect, then delivers', async () => {
    const bus = new EventBus({ transport: new LocalTransport(), logger: silentLogger });
    buses.push(bus);
    const seen: unknown[] = [];
    bus.register(data => void seen.push(data), 'a', 'x');
    bus.start();
    const receipt = bus.post('a', 'x', 7);
    await expect(receipt).resolves.toHaveProperty('id');
    await waitFor(() => seen.length === 1);
    expect(seen).toEqual([7]);
  });
});

import { BehaviorSubject } from 'rxjs';
import { systemClock } from '../../../../lib/common/clock.js';
import type { Envelope } from '../../../../lib/interfaces/envelope.interface.js';
import type {
  Delivery,
  PublishResult,
  Transport,
  TransportContext,
  TransportStatus,
} from '../../../../lib/interfaces/transport.interface.js';
import {
  TIER_HOST_HEADER,
  TIER_UNIQUE_HEADER,
  TieredTransport,
  type HostTier,
} from '../../../../lib/transports/tiered/tiered.transport.js';
import { memoryLogger } from '../../../helpers/memory-logger.js';
import { waitFor } from '../../../helpers/wait-for.js';

// The tier's own logic between two stand-in transports (the real ones, with
// real processes, are test/e2e/tiered/): what it keeps, relays, skips and drops.

const features = {
  reach: 'host',
  guarantee: 'effectively-once',
  ordering: 'global',
  uniqueScope: 'host',
  redelivers: false,
  loopback: true,
  persistent: false,
} as const;

/** A host transport whose broker role the test sets, recording what is published into it. */
class FakeHost implements HostTier {
  readonly name = 'fake-host';
  readonly features = features;
  readonly status$ = new BehaviorSubject<TransportStatus>({ state: 'connecting', role: 'worker' });
  isBroker = false;
  context?: TransportContext;
  readonly published: Envelope[] = [];
  async connect(context: TransportContext): Promise<void> {
    this.context = context;
    this.status$.next({ state: 'connected', role: this.isBroker ? 'broker' : 'worker' });
  }
  async publish(batch: readonly Envelope[]): Promise<readonly PublishResult[]> {
    this.published.push(...batch);
    return batch.map(() => ({ ok: true }));
  }
  stats(): Record<string, number> {
    return {};
  }
  async close(): Promise<void> {
    this.status$.next({ state: 'closed' });
  }
  /** Hands an envelope to the tier as a delivery of the host; resolves with its settlement. */
  deliver(envelope: Envelope): Promise<string> {
    return new Promise(resolve =>
      this.context!.deliver({ envelope, attempt: 1, settle: s => resolve(s.outcome) }),
    );
  }
}

/** A network transport recording what is relayed. */
class FakeUplink implements Transport {
  readonly name = 'fake-net';
  readonly features = { ...features, reach: 'network', uniqueScope: 'network' } as const;
  readonly status$ = new BehaviorSubject<TransportStatus>({ state: 'connected' });
  context?: TransportContext;
  readonly published: Envelope[][] = [];
  async connect(context: TransportContext): Promise<void> {
    this.context = context;
  }
  async publish(batch: readonly Envelope[]): Promise<readonly PublishResult[]> {
    this.published.push([...batch]);
    return batch.map(() => ({ ok: true }));
  }
  stats(): Record<string, number> {
    return { read: 1 };
  }
  async close(): Promise<void> {}
  deliver(envelope: Envelope): Promise<string> {
    return new Promise(resolve =>
      this.context!.deliver({ envelope, attempt: 1, settle: s => resolve(s.outcome) }),
    );
  }
}

const envelope = (id: string, extra: Partial<Envelope> = {}): Envelope => ({
  id,
  source: 's',
  event: 'e',
  payload: '1',
  origin: 'o',
  occurredAt: new Date(0).toISOString(),
  ...extra,
});

async function tier(broker: boolean, relayMemory = 3) {
  const host = new FakeHost();
  host.isBroker = broker;
  const uplink = new FakeUplink();
  const transport = new TieredTransport({
    host,
    uplink: () => uplink,
    hostName: 'h1',
    relayMemory,
  });
  const delivered: Delivery[] = [];
  const logger = memoryLogger();
  await transport.connect({
    deliver: d => {
      delivered.push(d);
      d.settle({ outcome: 'ack' });
    },
    logger,
    clock: systemClock,
    unique: { ttlMs: 1000, cacheSize: 10 },
  });
  return { host, uplink, transport, delivered, logger };
}

describe('TieredTransport', () => {
  it('a worker keeps the last relayMemory host posts and relays them again once elected', async () => {
    const { host, uplink, transport, delivered } = await tier(false, 3);
    for (const id of ['a', 'b', 'c', 'd', 'e']) await host.deliver(envelope(id));
    expect(delivered.map(d => d.envelope.id)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(uplink.published).toEqual([]);
    expect(transport.stats()['tier.relayMemory']).toBe(3);
    host.isBroker = true;
    host.status$.next({ state: 'connected', role: 'broker' });
    await waitFor(() => uplink.published.flat().length === 3, { message: 'relayed again' });
    expect(uplink.published.flat().map(e => e.id)).toEqual(['c', 'd', 'e']);
    expect(uplink.published.flat().every(e => e.headers?.[TIER_HOST_HEADER] === 'h1')).toBe(true);
    expect(transport.stats()).toMatchObject({ 'tier.relayedAgain': 3, 'tier.relayMemory': 0 });
  });

  it('the broker relays a host post once, in one publish per turn, and settles after the relay', async () => {
    const { host, uplink, transport } = await tier(true);
    const settled = await Promise.all([host.deliver(envelope('x')), host.deliver(envelope('y'))]);
    expect(settled).toEqual(['ack', 'ack']);
    expect(uplink.published.map(batch => batch.map(e => e.id))).toEqual([['x', 'y']]);
    expect(transport.stats()['tier.relayed']).toBe(2);
  });

  it("the uplink skips its own host's entries, posts others' in once, and drops a copy seen before", async () => {
    const { host, uplink, transport, logger } = await tier(true);
    const own = envelope('own', { headers: { [TIER_HOST_HEADER]: 'h1' } });
    const other = envelope('n1', { headers: { [TIER_HOST_HEADER]: 'h2', k: 'v' } });
    expect(await uplink.deliver(own)).toBe('ack');
    expect(await uplink.deliver(other)).toBe('ack');
    expect(await uplink.deliver(other)).toBe('ack');
    expect(host.published.map(e => e.id)).toEqual(['n1']);
    expect(transport.stats()).toMatchObject({
      'tier.ownSkipped': 1,
      'tier.fromNetwork': 1,
      'tier.networkDuplicates': 1,
      'uplink.read': 1,
    });
    expect(logger.lines.some(line => line.includes('tiered uplink-duplicate'))).toBe(true);
  });

  it('events from the network reach handlers without the tier headers', async () => {
    const { host, delivered } = await tier(false);
    await host.deliver(envelope('n2', { headers: { [TIER_HOST_HEADER]: 'h2', k: 'v' } }));
    await host.deliver(envelope('n3', { headers: { [TIER_HOST_HEADER]: '' } }));
    expect(delivered.map(d => d.envelope.headers)).toEqual([{ k: 'v' }, undefined]);
  });

  it('a unique post crosses the host under its own id and leaves it with its key, never run here', async () => {
    const { host, uplink, transport, delivered } = await tier(true);
    await transport.publish([envelope('u1', { unique: 'k' })]);
    const marker = host.published[0];
    expect(marker.unique).toBeUndefined();
    expect(marker.id).not.toBe('u1');
    expect(marker.headers?.[TIER_UNIQUE_HEADER]).toBe('k');
    expect(await host.deliver(marker)).toBe('ack');
    expect(delivered).toEqual([]);
    const relayed = uplink.published.flat()[0];
    expect(relayed).toMatchObject({ id: 'u1', unique: 'k', headers: { [TIER_HOST_HEADER]: 'h1' } });
    expect(relayed.headers?.[TIER_UNIQUE_HEADER]).toBeUndefined();
  });
});

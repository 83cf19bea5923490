import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { EventBus } from '../../../lib/bus/event-bus.js';
import { silentLogger } from '../../../lib/common/logger.js';
import type { HeraldEvent } from '../../../lib/interfaces/envelope.interface.js';
import { disableTelemetry, enableTelemetry } from '../../../lib/otel/index.js';
import { LocalTransport } from '../../../lib/transports/local/local.transport.js';
import { waitFor } from '../../helpers/wait-for.js';
import { sample, startSdk, type TestSdk } from './otel-sdk.js';

let sdk: TestSdk;
beforeAll(async () => {
  sdk = await startSdk();
});
afterAll(async () => {
  disableTelemetry();
  await sdk.shutdown();
});

/** A bus with the OpenTelemetry hooks (installed before it is built) and one handler per name. */
async function busWith(
  handlers: Record<string, (data: unknown, event: HeraldEvent) => unknown>,
  options: Parameters<typeof enableTelemetry>[0] = {},
  concurrency?: number,
): Promise<EventBus> {
  expect(await enableTelemetry(options)).toBe(true);
  const bus = new EventBus({ transport: new LocalTransport(), logger: silentLogger, concurrency });
  for (const [name, handler] of Object.entries(handlers)) {
    Object.defineProperty(handler, 'name', { value: name });
    bus.register(handler, 'orders');
  }
  await bus.connect();
  bus.start();
  return bus;
}

describe('OpenTelemetry on the local transport (real SDK, Prometheus over HTTP)', () => {
  it('post opens a producer span whose context reaches each handler as its consumer span parent', async () => {
    sdk.exporter.reset();
    let seenHeaders: Readonly<Record<string, string>> = {};
    let activeInHandler: string | undefined;
    const bus = await busWith({
      'Billing.onOrder': (_data, event) => {
        seenHeaders = event.headers;
        activeInHandler = trace.getSpan(context.active())?.spanContext().spanId;
      },
      'Mailer.onOrder': async data => {
        if ((data as { fail?: boolean }).fail) throw new Error('mail server said no');
      },
    });
    const receipt = await bus.post('orders', 'created', { n: 1 });
    await bus.post('orders', 'created', { fail: true });
    await bus.whenIdle();
    await waitFor(
      () => sdk.spans().filter(s => s.kind === SpanKind.CONSUMER).length === 4 || undefined,
    );
    const spans = sdk.spans();
    const producer = spans.find(
      s => s.kind === SpanKind.PRODUCER && s.attributes['messaging.message.id'] === receipt.id,
    )!;
    expect(producer.name).toBe('send orders');
    expect(producer.attributes).toMatchObject({
      'messaging.system': 'nest-herald',
      'messaging.operation.type': 'send',
      'messaging.destination.name': 'orders',
      'herald.event': 'created',
      'herald.transport': 'local',
    });
    const consumers = spans.filter(
      s => s.kind === SpanKind.CONSUMER && s.attributes['messaging.message.id'] === receipt.id,
    );
    expect(consumers.map(s => s.attributes['herald.handler']).sort()).toEqual([
      'Billing.onOrder',
      'Mailer.onOrder',
    ]);
    for (const consumer of consumers) {
      expect(consumer.name).toBe('process orders');
      expect(consumer.spanContext().traceId).toBe(producer.spanContext().traceId);
      expect(consumer.parentSpanContext?.spanId).toBe(producer.spanContext().spanId);
      expect(consumer.attributes['messaging.operation.type']).toBe('process');
    }
    // The handler ran inside its span; the envelope carried W3C trace context.
    expect(seenHeaders.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    expect(activeInHandler).toBeDefined();
    const failed = spans.find(
      s =>
        s.status.code === SpanStatusCode.ERROR &&
        s.attributes['herald.handler'] === 'Mailer.onOrder',
    )!;
    expect(failed.status.message).toBe('mail server said no');
    expect(failed.events.map(e => e.name)).toContain('exception');
    await bus.close();
  });

  it('counters, the handler histogram and the queue gauges move on the scraped endpoint', async () => {
    // One at a time, so events posted together wait: the high-water gauge moves.
    const bus = await busWith(
      {
        'Stock.onOrder': async (data: unknown) => {
          if ((data as { fail?: boolean }).fail) throw new Error('no stock');
        },
      },
      {},
      1,
    );
    const labels = { transport: 'local', source: 'orders', event: 'shipped' };
    const before = await sdk.scrape();
    const posted0 = sample(before, 'herald_events_posted_total', labels) || 0;
    const handled0 = sample(before, 'herald_events_handled_total', labels) || 0;
    await Promise.all([
      ...Array.from({ length: 5 }, (_, i) => bus.post('orders', 'shipped', { i })),
      bus.post('orders', 'shipped', { fail: true }),
    ]);
    await bus.whenIdle();
    const text = await waitFor(async () => {
      const t = await sdk.scrape();
      return sample(t, 'herald_events_handled_total', labels) === handled0 + 5 ? t : undefined;
    });
    if (process.env.SHOW_SCRAPE) console.log(text);
    expect(sample(text, 'herald_events_posted_total', labels)).toBe(posted0 + 6);
    expect(sample(text, 'herald_events_delivered_total', labels)).toBeGreaterThanOrEqual(6);
    expect(sample(text, 'herald_events_failed_total', labels)).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'herald_handler_duration_count', { handler: 'Stock.onOrder' })).toBe(6);
    expect(
      sample(text, 'herald_publish_duration_count', { transport: 'local' }),
    ).toBeGreaterThanOrEqual(6);
    expect(sample(text, 'herald_queue_depth', { transport: 'local' })).toBe(0);
    expect(sample(text, 'herald_queue_high_water', { transport: 'local' })).toBeGreaterThanOrEqual(
      1,
    );
    expect(
      sample(text, 'herald_transport_stat', { transport: 'local', stat: 'published' }),
    ).toBeGreaterThanOrEqual(6);
    await bus.close();
  });

  it('caps attribute cardinality: past maxAttributeSets, source and event become _other', async () => {
    const warnings: string[] = [];
    expect(await enableTelemetry({ maxAttributeSets: 2 })).toBe(true);
    const bus = new EventBus({
      transport: new LocalTransport(),
      logger: { ...silentLogger, warn: m => warnings.push(m) },
    });
    bus.register(() => undefined);
    await bus.connect();
    bus.start();
    for (const event of ['a1', 'a2', 'a3', 'a4']) await bus.post('cardinality', event);
    await bus.whenIdle();
    const text = await sdk.scrape();
    expect(sample(text, 'herald_events_posted_total', { source: 'cardinality', event: 'a2' })).toBe(
      1,
    );
    expect(
      sample(text, 'herald_events_posted_total', { source: 'cardinality', event: 'a3' }),
    ).toBeNaN();
    expect(sample(text, 'herald_events_posted_total', { source: '_other', event: '_other' })).toBe(
      2,
    );
    expect(warnings).toEqual([
      'otel otel-attribute-limit: more than 2 distinct source/event attribute sets; further ones are recorded as _other [limit=2]',
    ]);
    await bus.close();
  });

  it('refuses bad options with InvalidOptionsError naming the option', async () => {
    await expect(enableTelemetry({ maxAttributeSets: 0 })).rejects.toThrow(/maxAttributeSets/);
    await expect(
      enableTelemetry({ metric: true } as unknown as Parameters<typeof enableTelemetry>[0]),
    ).rejects.toThrow(/metric/);
  });
});

import { metrics } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { currentInstrumentation } from '../../../lib/common/instrumentation.js';
import { EventBus } from '../../../lib/bus/event-bus.js';
import { silentLogger } from '../../../lib/common/logger.js';
import { autoloadTelemetry } from '../../../lib/otel/otel.loader.js';
import { disableTelemetry } from '../../../lib/otel/index.js';
import { createTransport } from '../../../lib/transports/create-transport.js';

afterEach(() => {
  disableTelemetry();
  metrics.disable();
});

describe('autoloadTelemetry', () => {
  it('installs nothing when the API is present but no SDK registered a provider', async () => {
    await autoloadTelemetry();
    expect(currentInstrumentation()).toBeUndefined();
    // A bus built now has no hooks: post goes straight to the transport.
    const bus = new EventBus({ transport: await createTransport({}), logger: silentLogger });
    expect((bus as unknown as { instrumentation?: unknown }).instrumentation).toBeUndefined();
    await bus.close();
  });

  it('installs the instrumentation once an SDK registered a meter provider (createTransport loads it)', async () => {
    metrics.setGlobalMeterProvider(new MeterProvider());
    await createTransport({ transport: 'local' });
    expect(currentInstrumentation()).toBeDefined();
    const bus = new EventBus({ transport: await createTransport({}), logger: silentLogger });
    expect((bus as unknown as { instrumentation?: unknown }).instrumentation).toBeDefined();
    await bus.close();
  });

  it('NEST_HERALD_OTEL=off keeps it out', async () => {
    metrics.setGlobalMeterProvider(new MeterProvider());
    process.env.NEST_HERALD_OTEL = 'off';
    try {
      await autoloadTelemetry();
      expect(currentInstrumentation()).toBeUndefined();
    } finally {
      delete process.env.NEST_HERALD_OTEL;
    }
  });
});

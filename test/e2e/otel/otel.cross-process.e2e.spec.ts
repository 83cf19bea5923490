import { SpanKind } from '@opentelemetry/api';
import { EventBus } from '../../../lib/bus/event-bus.js';
import { silentLogger } from '../../../lib/common/logger.js';
import type { Transport } from '../../../lib/interfaces/transport.interface.js';
import { disableTelemetry, enableTelemetry } from '../../../lib/otel/index.js';
import path from 'node:path';
import { startBroker } from '../../../lib/index.js';
import { IpcTransport } from '../../../lib/transports/ipc/ipc.transport.js';
import { tempDir } from '../../helpers/temp-dir.js';
import { PgTransport } from '../../../lib/transports/pg/pg.transport.js';
import { RedisTransport } from '../../../lib/transports/redis/redis.transport.js';
import { killAllChildren, spawnNode } from '../../helpers/processes.js';
import { PG_URL, REDIS_URL, uniqueName } from '../../helpers/services.js';
import { startSdk, type TestSdk } from './otel-sdk.js';

let sdk: TestSdk;
beforeAll(async () => {
  sdk = await startSdk();
  expect(await enableTelemetry()).toBe(true);
});
afterAll(async () => {
  await killAllChildren();
  disableTelemetry();
  await sdk.shutdown();
});

interface RemoteSpan {
  name: string;
  kind: number;
  traceId: string;
  parentSpanId?: string;
  attributes: Record<string, unknown>;
}

const cases: [string, (name: string) => Transport][] = [
  [
    'ipc',
    socketPath => new IpcTransport({ hostBroker: false, socketPath, workerId: 0, workerCount: 2 }),
  ],
  ['redis', stream => new RedisTransport({ url: REDIS_URL, stream })],
  ['pg', channel => new PgTransport({ connectionString: PG_URL, channel })],
];

describe('one trace across processes', () => {
  it.each(cases)(
    '%s: the consumer span in the other process is a child of this process’s producer span',
    async (kind, make) => {
      let name = uniqueName(`otel_${kind}`);
      let broker: { close(): Promise<void> } | undefined;
      if (kind === 'ipc') {
        name = path.join(tempDir('herald-otel-'), 'broker.sock');
        broker = await startBroker({ socketPath: name, workerCount: 2 });
      }
      const child = spawnNode('test/e2e/otel/fixtures/traced-consumer.ts', { args: [kind, name] });
      await child.waitForLine('ready');
      const bus = new EventBus({ transport: make(name), logger: silentLogger });
      try {
        await bus.connect();
        bus.start();
        sdk.exporter.reset();
        const receipt = await bus.post('orders', 'created', { n: 1 });
        const line = await child.waitForLine(/^span .*"kind":4/);
        const remote = JSON.parse(line.slice('span '.length)) as RemoteSpan;
        const producer = sdk
          .spans()
          .find(
            s =>
              s.kind === SpanKind.PRODUCER && s.attributes['messaging.message.id'] === receipt.id,
          )!;
        expect(producer).toBeDefined();
        expect(remote).toMatchObject({
          name: 'process orders',
          kind: SpanKind.CONSUMER,
          traceId: producer.spanContext().traceId,
          parentSpanId: producer.spanContext().spanId,
          attributes: {
            'messaging.system': 'nest-herald',
            'messaging.operation.type': 'process',
            'messaging.destination.name': 'orders',
            'messaging.message.id': receipt.id,
            'herald.transport': kind,
            'herald.handler': 'Remote.onOrder',
          },
        });
        child.child.stdin?.end();
        await child.exited;
      } finally {
        await bus.close();
        await broker?.close();
      }
    },
  );
});

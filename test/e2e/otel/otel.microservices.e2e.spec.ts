import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { ClientProxy } from '@nestjs/microservices';
import { EventPattern, MessagePattern } from '@nestjs/microservices';
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { lastValueFrom } from 'rxjs';
import { silentLogger } from '../../../lib/common/logger.js';
import { disableTelemetry, enableTelemetry } from '../../../lib/otel/index.js';
import { PgNotifyClient, PgNotifyServer } from '../../../lib/pg/microservice/index.js';
import { RedisStreamsClient, RedisStreamsServer } from '../../../lib/redis/microservice/index.js';
import type { CustomTransportStrategy } from '@nestjs/microservices';
import { PG_URL, REDIS_URL, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';
import { startSdk, type TestSdk } from './otel-sdk.js';

let sdk: TestSdk;
beforeAll(async () => {
  sdk = await startSdk();
  expect(await enableTelemetry()).toBe(true);
});
afterAll(async () => {
  disableTelemetry();
  await sdk.shutdown();
});

/** The span id active in the handler, per call. */
const seen: string[] = [];

function appModule(prefix: string): new () => unknown {
  @Controller()
  class Handlers {
    @EventPattern(`${prefix}_placed`)
    placed(data: { fail?: boolean }): void {
      seen.push(trace.getSpan(context.active())?.spanContext().spanId ?? 'none');
      if (data.fail) throw new Error('cannot place');
    }

    @MessagePattern(`${prefix}_ask`)
    ask(n: number): number {
      return n * 2;
    }
  }
  @Module({ controllers: [Handlers] })
  class AppModule {}
  return AppModule;
}

const cases: [string, () => CustomTransportStrategy, () => ClientProxy][] = [];
const stream = uniqueName('otelms');
cases.push(
  [
    'pg-notify',
    () =>
      new PgNotifyServer({ connectionString: PG_URL, logger: silentLogger, closeTimeoutMs: 200 }),
    () => new PgNotifyClient({ connectionString: PG_URL, logger: silentLogger }),
  ],
  [
    'redis-streams',
    () =>
      new RedisStreamsServer({
        url: REDIS_URL,
        streamPrefix: `${stream}:`,
        blockMs: 200,
        logger: silentLogger,
        closeTimeoutMs: 200,
      }),
    () =>
      new RedisStreamsClient({
        url: REDIS_URL,
        streamPrefix: `${stream}:`,
        blockMs: 200,
        logger: silentLogger,
      }),
  ],
);

describe('OpenTelemetry in the microservice strategies', () => {
  it.each(cases)(
    '%s: emit and send carry the trace to the server, whose handler runs in a consumer span',
    async (system, makeServer, makeClient) => {
      const prefix = uniqueName('otel');
      let app: INestMicroservice | undefined;
      const client = makeClient();
      try {
        app = await NestFactory.createMicroservice(appModule(prefix), {
          strategy: makeServer(),
          logger: false,
        });
        await app.listen();
        await client.connect();
        sdk.exporter.reset();
        seen.length = 0;
        await lastValueFrom(client.emit(`${prefix}_placed`, { n: 1 }));
        expect(await lastValueFrom(client.send(`${prefix}_ask`, 21))).toBe(42);
        await lastValueFrom(client.emit(`${prefix}_placed`, { fail: true }));
        const spans = await waitFor(() => {
          const all = sdk.spans();
          return all.filter(s => s.kind === SpanKind.CONSUMER).length === 3 ? all : undefined;
        });
        const [placed, ask, failed] = spans
          .filter(s => s.kind === SpanKind.PRODUCER)
          .sort(
            (a, b) => a.startTime[1] - b.startTime[1] + (a.startTime[0] - b.startTime[0]) * 1e9,
          );
        const consumerOf = (producer: (typeof spans)[number]) =>
          spans.find(
            s =>
              s.kind === SpanKind.CONSUMER &&
              s.parentSpanContext?.spanId === producer.spanContext().spanId,
          );
        for (const producer of [placed, ask, failed]) {
          expect(producer.attributes).toMatchObject({
            'messaging.system': 'nest-herald',
            'messaging.operation.type': 'send',
            'herald.transport': system,
            'herald.role': 'client',
          });
          const consumer = consumerOf(producer)!;
          expect(consumer).toBeDefined();
          expect(consumer.spanContext().traceId).toBe(producer.spanContext().traceId);
          expect(consumer.attributes).toMatchObject({
            'messaging.operation.type': 'process',
            'herald.transport': system,
            'herald.role': 'server',
          });
        }
        expect(seen[0]).toBe(consumerOf(placed)!.spanContext().spanId);
        // Redis Streams acknowledges after the handler, so its error reaches the
        // span; pg-notify hands events to Nest's handleEvent, whose exception
        // filter logs the error and ends the call as a success.
        expect(consumerOf(failed)!.status.code).toBe(
          system === 'redis-streams' ? SpanStatusCode.ERROR : SpanStatusCode.UNSET,
        );
      } finally {
        await client.close();
        await app?.close();
      }
    },
  );
});

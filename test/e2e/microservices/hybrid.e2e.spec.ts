import { Controller, Get, Inject, Module, type INestApplication, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientsModule, type ClientProxy } from '@nestjs/microservices';
import { firstValueFrom, lastValueFrom } from 'rxjs';
import { silentLogger } from '../../../lib/index.js';
import { PgNotifyClient, PgNotifyServer } from '../../../lib/pg/microservice/index.js';
import { RedisStreamsClient, RedisStreamsServer } from '../../../lib/redis/microservice/index.js';
import type { HeraldServer } from '../../../lib/microservices/base/herald.server.js';
import { PG_URL, REDIS_URL, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';
import { deleteRedisKeys } from '../../helpers/redis-cleanup.js';
import {
  Recorder,
  handlersModule,
  prefixedPatterns,
  type TestPatterns,
} from './fixtures/handlers.js';
import { MiniHttpAdapter } from './fixtures/mini-http.adapter.js';

const base = uniqueName('hy');
const patterns: TestPatterns = prefixedPatterns(base);
const BACKEND = 'BACKEND';

interface Case {
  readonly name: string;
  readonly client: Type<ClientProxy>;
  readonly clientOptions: Record<string, unknown>;
  server(): HeraldServer<never>;
}

const prefix = `${base}:`;
const cases: Case[] = [
  {
    name: 'redis streams',
    client: RedisStreamsClient,
    clientOptions: { url: REDIS_URL, streamPrefix: prefix, blockMs: 200, logger: silentLogger },
    server: () =>
      new RedisStreamsServer({
        url: REDIS_URL,
        streamPrefix: prefix,
        blockMs: 200,
        logger: silentLogger,
      }) as unknown as HeraldServer<never>,
  },
  {
    name: 'pg notify',
    client: PgNotifyClient,
    clientOptions: { connectionString: PG_URL, logger: silentLogger },
    server: () =>
      new PgNotifyServer({
        connectionString: PG_URL,
        logger: silentLogger,
      }) as unknown as HeraldServer<never>,
  },
];

afterAll(() => deleteRedisKeys(`${base}*`));

describe.each(cases)('hybrid app with ClientsModule ($name)', testCase => {
  const recorder = new Recorder();
  let app: INestApplication | undefined;

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('serves HTTP and the microservice in one app; the client comes from ClientsModule customClass', async () => {
    @Controller()
    class GatewayController {
      constructor(@Inject(BACKEND) private readonly client: ClientProxy) {}

      @Get('sum')
      sum(): Promise<number> {
        return firstValueFrom(
          this.client.send<number>({ cmd: 'sum', of: patterns.echo }, [1, 2, 3]),
        );
      }

      @Get('notify')
      async notify(): Promise<{ ok: boolean }> {
        await lastValueFrom(this.client.emit(patterns.event, 'from http'), {
          defaultValue: undefined,
        });
        return { ok: true };
      }
    }

    @Module({
      imports: [
        ClientsModule.register([
          { name: BACKEND, customClass: testCase.client, options: testCase.clientOptions },
        ]),
        handlersModule(patterns, recorder),
      ],
      controllers: [GatewayController],
    })
    class HybridModule {}

    const adapter = new MiniHttpAdapter();
    app = await NestFactory.create(HybridModule, adapter, { logger: false });
    const server = testCase.server();
    app.connectMicroservice({ strategy: server }, { inheritAppConfig: true });
    await app.startAllMicroservices();
    await app.listen(0);

    const sum = await fetch(`http://127.0.0.1:${adapter.port}/sum`);
    expect(sum.status).toBe(200);
    expect(await sum.json()).toBe(6);

    const notify = await fetch(`http://127.0.0.1:${adapter.port}/notify`);
    expect(await notify.json()).toEqual({ ok: true });
    await waitFor(() => recorder.of(patterns.event).length === 1);
    expect(recorder.of(patterns.event)[0].data).toBe('from http');

    const client = app.get<ClientProxy>(BACKEND);
    expect(client).toBeInstanceOf(testCase.client);
    const statuses: string[] = [];
    client.status.subscribe(status => statuses.push(status));
    await app.close();
    app = undefined;
    expect(statuses[statuses.length - 1]).toBe('disconnected');
  });
});

// Issue 27 point 4 at run time: a typed PgNotifyClient / RedisStreamsClient
// (catalog type arguments) is the same client on the wire, against the real
// servers. What the types refuse is in test/types/microservice-clients.types.ts.
import type { INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { CustomStrategy } from '@nestjs/microservices';
import { firstValueFrom, lastValueFrom, type Observable } from 'rxjs';
import { silentLogger } from '../../../lib/index.js';
import {
  HeraldRecord,
  PgNotifyClient,
  PgNotifyServer,
} from '../../../lib/pg/microservice/index.js';
import { RedisStreamsClient, RedisStreamsServer } from '../../../lib/redis/microservice/index.js';
import { deleteRedisKeys } from '../../helpers/redis-cleanup.js';
import { PG_URL, REDIS_URL, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';
import { Recorder, handlersModule, prefixedPatterns } from './fixtures/handlers.js';

/** The fixture's patterns are `<base>_<name>`: one catalog entry covers every base. */
interface Events {
  readonly [pattern: `${string}_event`]: { id: number; note?: string };
}
interface Messages {
  readonly [pattern: `${string}_echo`]: {
    data: { hello: string };
    reply: { echo: { hello: string }; instance: string };
  };
}

const base = uniqueName('tc');
const patterns = prefixedPatterns(base);
const event = patterns.event as `${string}_event`;
const echo = patterns.echo as `${string}_echo`;
const recorder = new Recorder();
const opened: { close(): Promise<unknown> | unknown }[] = [];

async function serve(strategy: CustomStrategy['strategy']): Promise<INestMicroservice> {
  const app = await NestFactory.createMicroservice(handlersModule(patterns, recorder), {
    strategy,
    logger: false,
  });
  opened.push(app);
  await app.listen();
  return app;
}

async function exercise(
  client: PgNotifyClient<Events, Messages> | RedisStreamsClient<Events, Messages>,
) {
  opened.push(client);
  await lastValueFrom(client.emit(event, { id: 7 }), { defaultValue: undefined });
  await lastValueFrom(client.emit(event, new HeraldRecord({ id: 8 }, { metadata: { k: 'v' } })), {
    defaultValue: undefined,
  });
  await waitFor(() => recorder.of(patterns.event).length === 2);
  expect(recorder.of(patterns.event).map(seen => seen.data)).toEqual([{ id: 7 }, { id: 8 }]);
  const reply: Observable<{ echo: { hello: string }; instance: string }> = client.send(echo, {
    hello: 'world',
  });
  const answered = await firstValueFrom(reply);
  expect(answered).toEqual({ echo: { hello: 'world' }, instance: 'a' });
  await expect(
    firstValueFrom(client.send(echo, new HeraldRecord({ hello: 'timed' }, { timeoutMs: 5000 }))),
  ).resolves.toEqual({ echo: { hello: 'timed' }, instance: 'a' });
}

beforeEach(() => recorder.reset());

afterEach(async () => {
  for (const item of opened.splice(0).reverse()) await item.close();
});

afterAll(async () => {
  await deleteRedisKeys(`${base}*`);
});

it('PgNotifyClient<Events, Messages>: typed emit and send against a real PgNotifyServer', async () => {
  await serve(
    new PgNotifyServer({ connectionString: PG_URL, reconnectMs: 100, logger: silentLogger }),
  );
  await exercise(
    new PgNotifyClient<Events, Messages>({ connectionString: PG_URL, logger: silentLogger }),
  );
});

it('RedisStreamsClient<Events, Messages>: typed emit and send against a real RedisStreamsServer', async () => {
  const prefix = `${base}:`;
  await serve(
    new RedisStreamsServer({
      url: REDIS_URL,
      streamPrefix: prefix,
      blockMs: 200,
      logger: silentLogger,
    }),
  );
  await exercise(
    new RedisStreamsClient<Events, Messages>({
      url: REDIS_URL,
      streamPrefix: prefix,
      blockMs: 200,
      logger: silentLogger,
    }),
  );
});

import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import {
  EventBus,
  EventPublisher,
  EventsModule,
  OnEvent,
  SerializationError,
  silentLogger,
  type HeraldEvent,
} from '../../../lib/index.js';
import {
  RedisTransport,
  fieldsToRecord,
  type RedisTransportOptions,
} from '../../../lib/redis/index.js';
import { REDIS_URL, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';

// Issue 20 point 6: layout 'mainflux'. Entries are written here exactly as
// the Go services write them: MainfluxLabs/mainflux v0.41 pkg/events
// (publisher.go: go-redis XAddArgs{Stream, MaxLenApprox: 100000, Values: map}
// -> `XADD <stream> MAXLEN ~ 100000 * k v ...`, every value a string,
// schema.go: occurred_at = OccurredAt.UTC().Format(time.RFC3339Nano),
// evt_org_id / evt_group_id always, metadata json.Marshal'ed to a string),
// and mainflux/mainflux's older pkg/events/redis (occurred_at =
// time.Now().UnixNano(), an int64 go-redis writes in decimal).

const admin = new Redis(REDIS_URL);
const buses: EventBus[] = [];
const keys: string[] = [];

function streamName(prefix: string): string {
  const name = `mainflux.${uniqueName(prefix)}`;
  keys.push(name, `${name}:dead`);
  return name;
}

/** `XADD` as go-redis v8 sends XAddArgs{MaxLenApprox: 100000}: field order is a Go map's (any). */
function goXadd(stream: string, values: Record<string, string>): Promise<string | null> {
  return admin.xadd(stream, 'MAXLEN', '~', '100000', '*', ...Object.entries(values).flat());
}

/** What MainfluxLabs v0.41 writes for ThingCreated (schema.go Event.Encode). */
function thingCreated(id: string, occurredAt: string): Record<string, string> {
  return {
    metadata: '{"serial":"A-1","nested":{"n":1}}',
    group_id: 'grp-1',
    id,
    operation: 'thing.create',
    profile_id: 'prof-1',
    name: 'sensor',
    jwt_identity_user_id: 'user-1',
    jwt_identity_user_email: 'u@example.com',
    occurred_at: occurredAt,
    evt_org_id: '',
    evt_group_id: 'grp-1',
  };
}

async function bus(options: RedisTransportOptions): Promise<EventBus> {
  const made = new EventBus({
    transport: new RedisTransport({ url: REDIS_URL, blockMs: 100, ...options }),
    logger: silentLogger,
  });
  buses.push(made);
  await made.connect();
  made.start();
  return made;
}

afterEach(async () => {
  await Promise.all(buses.splice(0).map(b => b.close({ timeoutMs: 1000 })));
  if (keys.length) await admin.del(...keys.splice(0));
});

afterAll(() => admin.disconnect());

describe("layout 'mainflux'", () => {
  it('hands entries a Go service wrote to @OnEvent(stream, operation): fields as string data, occurred_at byte-exact (RFC 3339 nanoseconds and UnixNano)', async () => {
    const things = streamName('things');
    const instance = uniqueName('svc');
    keys.push(`mainflux:cursor:${instance}:${things}`);
    const b = await bus({ layout: 'mainflux', streams: [things], instance });
    const seen: [Record<string, string>, HeraldEvent][] = [];
    b.register(
      (data, event) => void seen.push([data as Record<string, string>, event]),
      things,
      'thing.create',
    );
    const rfc = '2024-01-02T03:04:05.123456789Z';
    const nano = '1704164645123456789';
    const id1 = await goXadd(things, thingCreated('t1', rfc));
    const id2 = await goXadd(things, { operation: 'thing.create', id: 't2', occurred_at: nano });
    await waitFor(() => seen.length === 2);
    const [[data1, event1], [data2, event2]] = seen;
    expect(event1).toMatchObject({ source: things, event: 'thing.create', occurredAt: rfc });
    expect(data1).toEqual({
      metadata: '{"serial":"A-1","nested":{"n":1}}',
      group_id: 'grp-1',
      id: 't1',
      profile_id: 'prof-1',
      name: 'sensor',
      jwt_identity_user_id: 'user-1',
      jwt_identity_user_email: 'u@example.com',
      occurred_at: rfc,
      evt_org_id: '',
      evt_group_id: 'grp-1',
    });
    expect(data2).toEqual({ id: 't2', occurred_at: nano });
    expect(event2.occurredAt).toBe('2024-01-02T03:04:05.123Z');
    expect(event1.id).toBe(`${things}@${id1}`);
    // The cursor is the Go subscriber's key, holding the last id handled.
    await waitFor(async () => (await admin.get(`mainflux:cursor:${instance}:${things}`)) === id2);
  });

  it("resumes from the Go subscriber's cursor key (mainflux:cursor:<name>:<stream>) and skips history on first boot", async () => {
    const things = streamName('cursor');
    const instance = uniqueName('svc');
    const cursor = `mainflux:cursor:${instance}:${things}`;
    keys.push(cursor);
    const ids: string[] = [];
    for (const id of ['a', 'b', 'c'])
      ids.push((await goXadd(things, { operation: 'thing.remove', id }))!);
    await admin.set(cursor, ids[0]); // as the Go subscriber's saveCursor left it
    const b = await bus({ layout: 'mainflux', streams: [things], instance });
    const seen: string[] = [];
    b.register(data => void seen.push((data as { id: string }).id), things);
    await waitFor(() => seen.length === 2);
    expect(seen).toEqual(['b', 'c']);
    await waitFor(async () => (await admin.get(cursor)) === ids[2]);

    // First boot (no cursor): history skipped, as the Go subscriber does.
    const fresh = uniqueName('fresh');
    keys.push(`mainflux:cursor:${fresh}:${things}`);
    const b2 = await bus({ layout: 'mainflux', streams: [things], instance: fresh });
    const seen2: string[] = [];
    b2.register(data => void seen2.push((data as { id: string }).id), things);
    await goXadd(things, { operation: 'thing.remove', id: 'd' });
    await waitFor(() => seen2.length === 1);
    expect(seen2).toEqual(['d']);
  });

  it('post writes the entry a Go subscriber reads: operation = event, string fields, nested values JSON-encoded, occurred_at RFC 3339 nanoseconds', async () => {
    const things = streamName('post');
    const instance = uniqueName('svc');
    keys.push(`mainflux:cursor:${instance}:${things}`);
    const b = await bus({ layout: 'mainflux', streams: [things], instance });
    const seen: HeraldEvent[] = [];
    b.register((_data, event) => void seen.push(event), things);
    const receipt = await b.post(things, 'thing.create', {
      id: 't9',
      name: 'lamp',
      metadata: { room: 'hall', level: 2 },
      count: 3,
      active: true,
      skipped: undefined,
    });
    const [[entryId, flat]] = await admin.xrange(things, '-', '+');
    expect(receipt.ref).toBe(entryId);
    const fields = fieldsToRecord(flat);
    expect(fields).toEqual({
      operation: 'thing.create',
      id: 't9',
      name: 'lamp',
      metadata: '{"room":"hall","level":2}',
      count: '3',
      active: 'true',
      occurred_at: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/),
    });
    // Our own copy comes back with the post's id (whenIdle does not wait for it).
    await waitFor(() => seen.length === 1);
    expect(seen[0].id).toBe(receipt.id);
    // A given occurred_at is written as is.
    await b.post(things, 'thing.remove', { id: 't9', occurred_at: '1704164645123456789' });
    const [, [, second]] = await admin.xrange(things, '-', '+');
    expect(fieldsToRecord(second)).toEqual({
      operation: 'thing.remove',
      id: 't9',
      occurred_at: '1704164645123456789',
    });
  });

  it('refuses data the Go layout cannot carry: not an object, an operation member, a key', async () => {
    const things = streamName('refuse');
    const instance = uniqueName('svc');
    keys.push(`mainflux:cursor:${instance}:${things}`);
    const b = await bus({ layout: 'mainflux', streams: [things], instance });
    await expect(b.post(things, 'thing.create', [1, 2])).rejects.toThrow(SerializationError);
    await expect(b.post(things, 'thing.create', { operation: 'x' })).rejects.toThrow(
      /'operation' is the event name/,
    );
    await expect(b.post(things, 'thing.create', { id: 'k' }, { key: [1n] })).rejects.toThrow(
      /no place for a key/,
    );
    expect(await admin.xlen(things)).toBe(0);
  });

  it('work-queue mode reads in a consumer group: each Go entry handled once across two instances; an entry without operation is dead-lettered', async () => {
    const things = streamName('queue');
    const group = uniqueName('g');
    const options: RedisTransportOptions = {
      layout: 'mainflux',
      streams: [things],
      mode: 'work-queue',
      group,
      startId: '0',
    };
    const [a, b] = [await bus(options), await bus(options)];
    const seen: string[] = [];
    for (const x of [a, b])
      x.register(data => void seen.push((data as { id: string }).id), things, 'thing.remove');
    for (let i = 0; i < 20; i++)
      await goXadd(things, { operation: 'thing.remove', id: String(i), occurred_at: 'x' });
    const bad = await goXadd(things, { id: 'no-operation' });
    await waitFor(() => seen.length === 20);
    expect(new Set(seen).size).toBe(20);
    await waitFor(async () => (await admin.xlen(`${things}:dead`)) === 1);
    const [[, dead]] = await admin.xrange(`${things}:dead`, '-', '+');
    expect(fieldsToRecord(dead)).toMatchObject({ id: 'no-operation', dead_id: bad });
  });

  it('EventsModule: a Nest app consumes mainflux.things with @OnEvent', async () => {
    const things = streamName('nest');
    const instance = uniqueName('svc');
    keys.push(`mainflux:cursor:${instance}:${things}`);
    const seen: string[] = [];

    @Injectable()
    class ThingsListener {
      @OnEvent(things, 'thing.create')
      created(data: Record<string, string>): void {
        seen.push(`${data.id}:${data.occurred_at}`);
      }
    }

    @Module({
      imports: [
        EventsModule.forRoot({
          transport: 'redis',
          redis: { url: REDIS_URL, layout: 'mainflux', streams: [things], instance, blockMs: 100 },
          logger: silentLogger,
        }),
      ],
      providers: [ThingsListener],
    })
    class AppModule {}

    const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
    try {
      await goXadd(things, thingCreated('t7', '2024-01-02T03:04:05Z'));
      await waitFor(() => seen.length === 1);
      expect(seen).toEqual(['t7:2024-01-02T03:04:05Z']);
      await app.get(EventPublisher).post(things, 'thing.create', { id: 't8' });
      await waitFor(() => seen.length === 2);
    } finally {
      await app.close();
    }
  });
});

describe("layout 'mainflux' options", () => {
  it.each([
    [{ layout: 'mainflux', instance: 'x' }, /streams must be a non-empty array/],
    [{ layout: 'mainflux', streams: ['a'] }, /instance must be given/],
    [{ layout: 'mainflux', streams: ['a'], instance: 'x', stream: 's' }, /stream must be left out/],
    [{ streams: ['a'] }, /streams must be used with layout 'mainflux' only/],
    [
      { layout: 'mainflux', streams: [''], instance: 'x' },
      /streams\[0\] must be a non-empty string/,
    ],
  ])('refuses %j', (options, message) => {
    expect(() => new RedisTransport(options as RedisTransportOptions)).toThrow(message);
  });
});

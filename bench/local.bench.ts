// npm run bench:local — in-process events/s of nest-herald against
// @nestjs/event-emitter 12, both inside a Nest application context:
//   (a) postLocal -> handler   vs  EventEmitter2.emit -> @OnEvent
//   (b) post -> handler         vs  EventEmitter2.emitAsync -> @OnEvent
//       and vs the floor of any codec-bound post (JSON both ways + a promise
//       per event, no bus): the ceiling of post/emitAsync, measured in the run;
//       and vs that floor plus the envelope and event objects herald's API
//       implies per event (id, time, origin; the handler's event argument)
//   (c) post -> handler with a schema for the event (`schemas`: validated
//       before sending and again before the handler): a hand-written
//       Standard Schema, zod and valibot, against (b)'s post without one
// Both sides go through their Nest module, decorator and injectable. Variants
// run in interleaved rounds (bench/harness); the last line is (a).
// Each variant runs in a Node process of its own (this file forked with
// BENCH_LOCAL_CHILD=<variant>, same Node flags), its app set up once and
// reused by every round, its first round preceded by one untimed part; CPU is
// that process's around its timed part (bench/harness/local-process.ts). In
// one shared process the variant before moved the next one's events/s by up
// to 2x (bench/README.md, "bench:local, a process per variant"). But (b)'s
// post and its two floors share one process and run interleaved, in slices of
// a part each (the machine's slow spells fall on all three alike: bench/README.md,
// "bench:local, the two modes"); BENCH_SLICES (default 10).
// BENCH_INPROCESS=1: every variant in this process (the old way); BENCH_APART=1:
// post and the floors in processes of their own too.
// BENCH_EVENTS (per variant and round), BENCH_ROUNDS, BENCH_VARIANTS, BENCH_SMOKE=1.
import 'reflect-metadata';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  EventEmitter2,
  EventEmitterModule,
  OnEvent as OnEmitterEvent,
} from '@nestjs/event-emitter';
import * as v from 'valibot';
import { z } from 'zod';
import {
  EventPublisher,
  EventsModule,
  OnEvent,
  silentLogger,
  type EventSchemas,
  type StandardSchemaV1,
} from '../lib/index.js';
import {
  rounds,
  runBench,
  runMain,
  selectVariants,
  setting,
  type RunResult,
  type Session,
  type Variant,
} from './harness/index.js';
import {
  inOwnProcesses,
  runLocalChild,
  SLICES,
  type SlicedSession,
} from './harness/local-process.js';

const EVENTS = setting('BENCH_EVENTS', 200_000, 5000);
const ROUNDS = rounds(5);
const WINDOW = 1000; // posts in flight for the async variants

const POST = '(b) herald post -> handler';
const FLOOR = '(b) floor: JSON both ways + a promise per event';
const FLOOR_OBJECTS = '(b) floor + envelope and event objects';
/**
 * herald's post and the two floors it is judged against share a process and
 * run interleaved in slices (bench/harness/local-process.ts): they share no
 * code on their path, and the machine's slow spells (seconds long, any
 * allocating code about 1.6x slower) then fall on all three alike; in
 * processes of their own one of them could run a whole part in a spell the
 * other missed (bench/README.md, "bench:local, the two modes").
 */
const TOGETHER = [POST, FLOOR, FLOOR_OBJECTS];

const payload = (i: number): { id: number; name: string; tags: string[] } => ({
  id: i,
  name: 'order-created',
  tags: ['a', 'b'],
});

let emitterCount = 0;

@Injectable()
class EmitterListener {
  @OnEmitterEvent('orders.created')
  onCreated(): void {
    emitterCount++;
  }
}

@Module({ imports: [EventEmitterModule.forRoot()], providers: [EmitterListener] })
class EmitterApp {}

let heraldCount = 0;

@Injectable()
class HeraldListener {
  @OnEvent('orders', 'created')
  onCreated(): void {
    heraldCount++;
  }
}

@Module({ imports: [EventsModule.forRoot({ logger: silentLogger })], providers: [HeraldListener] })
class HeraldApp {}

type Payload = ReturnType<typeof payload>;

/** The cheapest real check: a hand-written Standard Schema (no library). */
const handWritten: StandardSchemaV1<Payload> = {
  '~standard': {
    version: 1,
    vendor: 'bench',
    validate: value => {
      const p = value as Partial<Payload> | null;
      return typeof p === 'object' &&
        p !== null &&
        Number.isInteger(p.id) &&
        typeof p.name === 'string' &&
        Array.isArray(p.tags) &&
        p.tags.every(tag => typeof tag === 'string')
        ? { value: p as Payload }
        : { issues: [{ message: 'not an order', path: [] }] };
    },
  },
};

/** (c): the same app with a schema for orders/created. */
function schemaApp(schema: StandardSchemaV1): new () => object {
  const schemas: EventSchemas = { orders: { created: schema } };
  @Module({
    imports: [EventsModule.forRoot({ logger: silentLogger, schemas })],
    providers: [HeraldListener],
  })
  class SchemaApp {}
  return SchemaApp;
}

const SCHEMAS: [string, StandardSchemaV1][] = [
  ['hand-written Standard Schema', handWritten],
  ['zod', z.object({ id: z.number().int(), name: z.string(), tags: z.array(z.string()) })],
  [
    'valibot',
    v.object({ id: v.pipe(v.number(), v.integer()), name: v.string(), tags: v.array(v.string()) }),
  ],
];

let floorCount = 0;
let floorQueue: { text: string; resolve: (receipt: { id: number }) => void }[] = [];
let floorScheduled = false;
const floorHandler = (data: unknown): void => {
  if (data !== undefined) floorCount++;
};
function floorFlush(): void {
  floorScheduled = false;
  const batch = floorQueue;
  floorQueue = [];
  for (let i = 0; i < batch.length; i++) {
    floorHandler(JSON.parse(batch[i].text));
    batch[i].resolve({ id: i });
  }
}
/** The floor of a codec-bound post: JSON.stringify, a promise, JSON.parse, the handler. */
function floorPost(data: unknown): Promise<{ id: number }> {
  const text = JSON.stringify(data);
  return new Promise(resolve => {
    floorQueue.push({ text, resolve });
    if (!floorScheduled) {
      floorScheduled = true;
      queueMicrotask(floorFlush);
    }
  });
}

/**
 * The floor with what any event bus with herald's API must also make per
 * event: an envelope that names the event (an id, the time, its origin), and
 * the event object the handler receives beside its data. No bus: no
 * registry, no dispatch rules, no settle, no counters.
 */
interface FloorEnvelope {
  id: string;
  source: string;
  event: string;
  payload: string;
  origin: string;
  occurredAt: string;
}
let namedCount = 0;
let namedSeq = 0;
let namedQueue: { envelope: FloorEnvelope; resolve: (receipt: { id: string }) => void }[] = [];
let namedScheduled = false;
const NAMED_PREFIX = '00000000-0000-4000-8000-0000000';
const NAMED_AT = new Date().toISOString();
const namedHandler = (data: unknown, event: { id: string }): void => {
  if (data !== undefined && event.id !== '') namedCount++;
};
function namedFlush(): void {
  namedScheduled = false;
  const batch = namedQueue;
  namedQueue = [];
  for (let i = 0; i < batch.length; i++) {
    const { envelope, resolve } = batch[i];
    const event = {
      id: envelope.id,
      source: envelope.source,
      event: envelope.event,
      data: JSON.parse(envelope.payload) as unknown,
      origin: envelope.origin,
      occurredAt: envelope.occurredAt,
      attempt: 1,
    };
    namedHandler(event.data, event);
    resolve({ id: envelope.id });
  }
}
/** {@link floorPost} plus the envelope and the handler's event object. */
function namedFloorPost(source: string, event: string, data: unknown): Promise<{ id: string }> {
  const envelope: FloorEnvelope = {
    id: NAMED_PREFIX + (namedSeq++ % 100_000),
    source,
    event,
    payload: JSON.stringify(data),
    origin: 'bench',
    occurredAt: NAMED_AT,
  };
  return new Promise(resolve => {
    namedQueue.push({ envelope, resolve });
    if (!namedScheduled) {
      namedScheduled = true;
      queueMicrotask(namedFlush);
    }
  });
}

async function waitFor(done: () => boolean): Promise<void> {
  while (!done()) await new Promise(resolve => setImmediate(resolve));
}

function expectDelivered(who: string, count: number, events: number): { events: number } {
  if (count !== events) throw new Error(`${who} delivered ${count} of ${events} events`);
  return { events: count };
}

/** Every app this process created, closed at its end. */
const apps: INestApplicationContext[] = [];

async function closeApps(): Promise<void> {
  for (const app of apps.splice(0).reverse()) await app.close();
}

/** Creates `module`'s application context once in this process (on first use). */
function lazyApp(module: new () => object): () => Promise<INestApplicationContext> {
  let app: Promise<INestApplicationContext> | undefined;
  return () =>
    (app ??= (async () => {
      const created = await NestFactory.createApplicationContext(module, { logger: false });
      apps.push(created);
      await created.init();
      return created;
    })());
}

const emitterApp = lazyApp(EmitterApp);
const emitter = async (): Promise<EventEmitter2> => (await emitterApp()).get(EventEmitter2);
/** A publisher of `app`, ready. */
const publisherOf =
  (app: () => Promise<INestApplicationContext>) => async (): Promise<EventPublisher> => {
    const publisher = (await app()).get(EventPublisher);
    await publisher.waitUntilReady();
    return publisher;
  };
const heraldBus = publisherOf(lazyApp(HeraldApp));
const schemaBuses = SCHEMAS.map(
  ([name, schema]) => [name, publisherOf(lazyApp(schemaApp(schema)))] as const,
);

/** `events` posts -> handler on `publisher`, WINDOW in flight: (b) and (c). */
async function posting(
  publisher: EventPublisher,
  who: string,
  events: number,
): Promise<{ events: number }> {
  heraldCount = 0;
  for (let i = 0; i < events; i += WINDOW) {
    const batch: Promise<unknown>[] = [];
    for (let j = i; j < i + WINDOW && j < events; j++)
      batch.push(publisher.post('orders', 'created', payload(j)));
    await Promise.all(batch);
  }
  await waitFor(() => heraldCount >= events);
  return expectDelivered(who, heraldCount, events);
}

/**
 * A variant whose setup gets what it runs against (its app, once per process)
 * and returns the timed part: `run(on, events)`, EVENTS events, or fewer for
 * a slice of an interleaved part (bench/harness/local-process.ts).
 */
function variant<T>(
  name: string,
  prepare: () => Promise<T>,
  run: (on: T, events: number) => Promise<RunResult>,
): Variant {
  return {
    name,
    async setup(): Promise<SlicedSession> {
      const on = await prepare();
      return { run: () => run(on, EVENTS), slice: events => run(on, events), teardown: closeApps };
    },
  };
}
const none = (): Promise<void> => Promise.resolve();

const VARIANTS: Variant[] = [
  variant('(a) herald postLocal -> handler', heraldBus, async (bus, events) => {
    heraldCount = 0;
    for (let i = 0; i < events; i += WINDOW) {
      for (let j = i; j < i + WINDOW && j < events; j++)
        bus.postLocal('orders', 'created', payload(j));
      await waitFor(() => heraldCount >= i);
    }
    await waitFor(() => heraldCount >= events);
    return expectDelivered('postLocal', heraldCount, events);
  }),
  variant('(a) event-emitter emit -> @OnEvent', emitter, async (on, events) => {
    emitterCount = 0;
    for (let i = 0; i < events; i++) on.emit('orders.created', payload(i));
    return expectDelivered('emit', emitterCount, events);
  }),
  variant(POST, heraldBus, (bus, events) => posting(bus, 'post', events)),
  ...schemaBuses.map(([name, bus]) =>
    variant(`(c) herald post -> handler, ${name}`, bus, (publisher, events) =>
      posting(publisher, `post (${name})`, events),
    ),
  ),
  variant(FLOOR, none, async (_, events) => {
    // What any post that keeps the codec on the local path must do (DESIGN.md
    // binds the local transport to the codec), with no bus: encode, decode,
    // call the handler, resolve one promise per event, batched per microtask.
    floorCount = 0;
    for (let i = 0; i < events; i += WINDOW) {
      const batch: Promise<unknown>[] = [];
      for (let j = i; j < i + WINDOW && j < events; j++) batch.push(floorPost(payload(j)));
      await Promise.all(batch);
    }
    return expectDelivered('floor', floorCount, events);
  }),
  variant(FLOOR_OBJECTS, none, async (_, events) => {
    // The floor above plus the two objects herald's API implies per event
    // (what is sent names the event; the handler gets the event beside its
    // data): the ceiling without anything a bus adds.
    namedCount = 0;
    for (let i = 0; i < events; i += WINDOW) {
      const batch: Promise<unknown>[] = [];
      for (let j = i; j < i + WINDOW && j < events; j++)
        batch.push(namedFloorPost('orders', 'created', payload(j)));
      await Promise.all(batch);
    }
    return expectDelivered('floor + objects', namedCount, events);
  }),
  variant('(b) event-emitter emitAsync -> @OnEvent', emitter, async (on, events) => {
    emitterCount = 0;
    for (let i = 0; i < events; i += WINDOW) {
      const batch: Promise<unknown>[] = [];
      for (let j = i; j < i + WINDOW && j < events; j++)
        batch.push(on.emitAsync('orders.created', payload(j)));
      await Promise.all(batch);
    }
    return expectDelivered('emitAsync', emitterCount, events);
  }),
];

/**
 * BENCH_INPROCESS=1, the old way: every variant's app created up front in
 * this process and shared by the rounds (the herald app by (a) and (b)).
 */
async function inThisProcess(variants: Variant[]): Promise<Variant[]> {
  const sessions = new Map<string, Session>();
  for (const v of variants) sessions.set(v.name, await v.setup());
  return variants.map(v => ({
    name: v.name,
    setup: () => Promise.resolve({ run: () => sessions.get(v.name)!.run() }),
  }));
}

const INPROCESS = process.env.BENCH_INPROCESS === '1';
/** BENCH_APART=1: post and the floors in processes of their own too (as before the two modes). */
const APART = process.env.BENCH_APART === '1';
const CHILD = process.env.BENCH_LOCAL_CHILD;

if (CHILD) {
  runLocalChild(VARIANTS, CHILD, EVENTS).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
} else
  runMain('bench:local', async () => {
    const chosen = selectVariants(VARIANTS);
    const own = INPROCESS
      ? undefined
      : inOwnProcesses(
          chosen,
          process.argv[1],
          'BENCH_LOCAL_CHILD',
          APART ? [] : [TOGETHER.filter(name => chosen.some(v => v.name === name))],
        );
    // Every variant's process loads and sets up its app before round 1, together.
    await own?.start(chosen.map(v => v.name));
    await runBench({
      title: 'bench:local',
      description:
        `${EVENTS} events of ~50 B per variant and round, ${WINDOW} in flight for the async ones; ` +
        (INPROCESS
          ? 'all variants in this process (BENCH_INPROCESS=1)'
          : 'each variant in a process of its own, one untimed part before its round 1' +
            (APART
              ? ' (BENCH_APART=1)'
              : `, but post and the two floors in one, their parts interleaved in ${SLICES} slices each`)),
      rounds: ROUNDS,
      variants: own ? own.variants : await inThisProcess(chosen),
      comparisons: [
        // (c): the cost of a schema, as post-with/post-without (CPU: without/with).
        ...SCHEMAS.map(([name]) => ({
          label: `schema/none (c, post with a ${name} against post without)`,
          herald: `(c) herald post -> handler, ${name}`,
          peer: POST,
        })),
        {
          label: 'herald/floor (b, post against JSON both ways + a promise)',
          herald: POST,
          peer: FLOOR,
        },
        {
          label: 'herald/floor+objects (b, post against the floor with envelope and event objects)',
          herald: POST,
          peer: FLOOR_OBJECTS,
        },
        {
          label: 'floor/event-emitter (b, the ceiling of post/emitAsync)',
          herald: FLOOR,
          peer: '(b) event-emitter emitAsync -> @OnEvent',
        },
        {
          label: 'herald/event-emitter (b, post/emitAsync)',
          herald: POST,
          peer: '(b) event-emitter emitAsync -> @OnEvent',
        },
        {
          label: 'herald/event-emitter',
          herald: '(a) herald postLocal -> handler',
          peer: '(a) event-emitter emit -> @OnEvent',
        },
      ],
      close: async () => {
        await own?.close();
        await closeApps();
      },
    });
  });

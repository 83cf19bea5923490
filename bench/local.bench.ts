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
// to 2x (bench/README.md, "bench:local, a process per variant").
// BENCH_INPROCESS=1: every variant in this process (the old way).
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
import { inOwnProcesses, runLocalChild } from './harness/local-process.js';

const EVENTS = setting('BENCH_EVENTS', 200_000, 5000);
const ROUNDS = rounds(5);
const WINDOW = 1000; // posts in flight for the async variants

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

function expectDelivered(who: string, count: number): { events: number } {
  if (count !== EVENTS) throw new Error(`${who} delivered ${count} of ${EVENTS} events`);
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

/** post -> handler on `publisher`, WINDOW in flight: (b) and (c). */
async function posting(publisher: EventPublisher, who: string): Promise<{ events: number }> {
  heraldCount = 0;
  for (let i = 0; i < EVENTS; i += WINDOW) {
    const batch: Promise<unknown>[] = [];
    for (let j = i; j < i + WINDOW && j < EVENTS; j++)
      batch.push(publisher.post('orders', 'created', payload(j)));
    await Promise.all(batch);
  }
  await waitFor(() => heraldCount >= EVENTS);
  return expectDelivered(who, heraldCount);
}

/** A variant whose setup gets what it runs against (its app, once per process) and returns the timed part. */
function variant<T>(
  name: string,
  prepare: () => Promise<T>,
  run: (on: T) => Promise<RunResult>,
): Variant {
  return {
    name,
    async setup(): Promise<Session> {
      const on = await prepare();
      return { run: () => run(on), teardown: closeApps };
    },
  };
}
const none = (): Promise<void> => Promise.resolve();

const VARIANTS: Variant[] = [
  variant('(a) herald postLocal -> handler', heraldBus, async bus => {
    heraldCount = 0;
    for (let i = 0; i < EVENTS; i += WINDOW) {
      for (let j = i; j < i + WINDOW && j < EVENTS; j++)
        bus.postLocal('orders', 'created', payload(j));
      await waitFor(() => heraldCount >= i);
    }
    await waitFor(() => heraldCount >= EVENTS);
    return expectDelivered('postLocal', heraldCount);
  }),
  variant('(a) event-emitter emit -> @OnEvent', emitter, async on => {
    emitterCount = 0;
    for (let i = 0; i < EVENTS; i++) on.emit('orders.created', payload(i));
    return expectDelivered('emit', emitterCount);
  }),
  variant('(b) herald post -> handler', heraldBus, bus => posting(bus, 'post')),
  ...schemaBuses.map(([name, bus]) =>
    variant(`(c) herald post -> handler, ${name}`, bus, publisher =>
      posting(publisher, `post (${name})`),
    ),
  ),
  variant('(b) floor: JSON both ways + a promise per event', none, async () => {
    // What any post that keeps the codec on the local path must do (DESIGN.md
    // binds the local transport to the codec), with no bus: encode, decode,
    // call the handler, resolve one promise per event, batched per microtask.
    floorCount = 0;
    for (let i = 0; i < EVENTS; i += WINDOW) {
      const batch: Promise<unknown>[] = [];
      for (let j = i; j < i + WINDOW && j < EVENTS; j++) batch.push(floorPost(payload(j)));
      await Promise.all(batch);
    }
    return expectDelivered('floor', floorCount);
  }),
  variant('(b) floor + envelope and event objects', none, async () => {
    // The floor above plus the two objects herald's API implies per event
    // (what is sent names the event; the handler gets the event beside its
    // data): the ceiling without anything a bus adds.
    namedCount = 0;
    for (let i = 0; i < EVENTS; i += WINDOW) {
      const batch: Promise<unknown>[] = [];
      for (let j = i; j < i + WINDOW && j < EVENTS; j++)
        batch.push(namedFloorPost('orders', 'created', payload(j)));
      await Promise.all(batch);
    }
    return expectDelivered('floor + objects', namedCount);
  }),
  variant('(b) event-emitter emitAsync -> @OnEvent', emitter, async on => {
    emitterCount = 0;
    for (let i = 0; i < EVENTS; i += WINDOW) {
      const batch: Promise<unknown>[] = [];
      for (let j = i; j < i + WINDOW && j < EVENTS; j++)
        batch.push(on.emitAsync('orders.created', payload(j)));
      await Promise.all(batch);
    }
    return expectDelivered('emitAsync', emitterCount);
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
const CHILD = process.env.BENCH_LOCAL_CHILD;

if (CHILD) {
  runLocalChild(VARIANTS, CHILD).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
} else
  runMain('bench:local', async () => {
    const chosen = selectVariants(VARIANTS);
    const own = INPROCESS
      ? undefined
      : inOwnProcesses(chosen, process.argv[1], 'BENCH_LOCAL_CHILD');
    // Every variant's process loads and sets up its app before round 1, together.
    await own?.start(chosen.map(v => v.name));
    await runBench({
      title: 'bench:local',
      description:
        `${EVENTS} events of ~50 B per variant and round, ${WINDOW} in flight for the async ones; ` +
        (INPROCESS
          ? 'all variants in this process (BENCH_INPROCESS=1)'
          : 'each variant in a process of its own, one untimed part before its round 1'),
      rounds: ROUNDS,
      variants: own ? own.variants : await inThisProcess(chosen),
      comparisons: [
        // (c): the cost of a schema, as post-with/post-without (CPU: without/with).
        ...SCHEMAS.map(([name]) => ({
          label: `schema/none (c, post with a ${name} against post without)`,
          herald: `(c) herald post -> handler, ${name}`,
          peer: '(b) herald post -> handler',
        })),
        {
          label: 'herald/floor (b, post against JSON both ways + a promise)',
          herald: '(b) herald post -> handler',
          peer: '(b) floor: JSON both ways + a promise per event',
        },
        {
          label: 'herald/floor+objects (b, post against the floor with envelope and event objects)',
          herald: '(b) herald post -> handler',
          peer: '(b) floor + envelope and event objects',
        },
        {
          label: 'floor/event-emitter (b, the ceiling of post/emitAsync)',
          herald: '(b) floor: JSON both ways + a promise per event',
          peer: '(b) event-emitter emitAsync -> @OnEvent',
        },
        {
          label: 'herald/event-emitter (b, post/emitAsync)',
          herald: '(b) herald post -> handler',
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

import { firstValueFrom, filter, type Observable } from 'rxjs';
import {
  EventBus,
  InvalidEventError,
  PayloadTooLargeError,
  SerializationError,
  TransportClosedError,
  silentLogger,
  type EventBusOptions,
  type EventBusStats,
  type EventHandler,
  type HeraldEvent,
  type PostOptions,
  type PostReceipt,
  type Settlement,
  type Transport,
  type TransportFeatures,
  type TransportStatus,
} from '../index.js';
import { waitFor } from './wait-for.js';

/**
 * How to make the transport under test. Instances created with the same
 * `scope` share one medium (channel, stream, socket): they reach each other
 * when the transport's reach is wider than the process.
 */
export interface ConformanceSetup {
  name: string;
  /** The transport's features, known before any instance is made (cases are chosen by them). */
  features: TransportFeatures;
  createTransport(scope: string): Transport | Promise<Transport>;
  /** Called once per scope after its buses closed (drop streams, channels...). */
  teardown?(scope: string): Promise<void>;
  /** Options merged into every bus (e.g. unique ttl). */
  busOptions?: Partial<EventBusOptions>;
  /** Event counts are scaled by this for slow transports. @default 1 */
  scale?: number;
  /**
   * Builds the instance under test around the (observed) transport, ready
   * to post and dispatch, e.g. a Nest app's `EventPublisher`; `close` ends
   * it. @default a plain `EventBus`
   */
  createInstance?(transport: Transport, busOptions: Partial<EventBusOptions>): Promise<BusLike>;
}

/** What the suite drives: the bus's API, as `EventBus` or a face over it. */
export interface BusLike {
  post(source: string, event: string, data?: unknown, options?: PostOptions): Promise<PostReceipt>;
  postLocal(source: string, event: string, data?: unknown): void;
  register(handler: EventHandler, source?: string, ...events: string[]): () => boolean;
  unregister(handler: EventHandler, source?: string, ...events: string[]): boolean;
  stats(): EventBusStats;
  readonly status$: Observable<TransportStatus>;
  close(options?: { timeoutMs?: number }): Promise<void>;
}

interface Instance {
  bus: BusLike;
  settlements: Settlement[];
}

/** Wraps a transport so the suite can see every settle the bus makes. */
function observeSettles(transport: Transport, settlements: Settlement[]): Transport {
  const connect = transport.connect.bind(transport);
  transport.connect = context =>
    connect({
      ...context,
      deliver: delivery =>
        context.deliver({
          envelope: delivery.envelope,
          attempt: delivery.attempt,
          settle: settlement => {
            settlements.push(settlement);
            delivery.settle(settlement);
          },
        }),
    });
  return transport;
}

async function startBus(transport: Transport, options: Partial<EventBusOptions>): Promise<BusLike> {
  const bus = new EventBus({ ...options, transport });
  await bus.connect();
  bus.start();
  await bus.waitUntilReady();
  return bus;
}

/**
 * The transport conformance suite, written once and run against every
 * transport (after Watermill's universal pub/sub tests). Cases that do not
 * apply to the transport's `features` are listed with the reason at the end.
 */
export function transportConformance(setup: ConformanceSetup): void {
  const skipped: string[] = [];
  const scale = setup.scale ?? 1;
  let scopes: string[] = [];
  let instances: Instance[] = [];
  const features = setup.features;

  const scope = (): string => {
    const name = `conf_${process.pid}_${Date.now().toString(36)}_${scopes.length}`;
    scopes.push(name);
    return name;
  };

  const instance = async (
    name: string,
    options: Partial<EventBusOptions> = {},
  ): Promise<Instance> => {
    const settlements: Settlement[] = [];
    const transport = observeSettles(await setup.createTransport(name), settlements);
    const busOptions = { logger: silentLogger, ...setup.busOptions, ...options };
    const made = {
      bus: await (setup.createInstance ?? startBus)(transport, busOptions),
      settlements,
    };
    instances.push(made);
    return made;
  };

  const when = (
    applies: boolean,
    title: string,
    reason: string,
    body: () => Promise<void>,
  ): void => {
    if (applies) it(title, body);
    else skipped.push(`${title}: ${reason}`);
  };

  describe(`transport conformance: ${setup.name}`, () => {
    afterEach(async () => {
      await Promise.all(instances.map(({ bus }) => bus.close({ timeoutMs: 2000 })));
      instances = [];
      await Promise.all(scopes.map(name => setup.teardown?.(name)));
      scopes = [];
    });

    afterAll(() => {
      const lines = skipped.length ? skipped.map(line => `  - ${line}`).join('\n') : '  (none)';
      console.log(`conformance ${setup.name}: skipped cases\n${lines}`);
    });

    it('reaches every matching handler, the sender included', async () => {
      const name = scope();
      const { bus } = await instance(name);
      const seen: string[] = [];
      bus.register(data => void seen.push(`a:${data}`), 'orders', 'created');
      bus.register(data => void seen.push(`b:${data}`), 'orders');
      bus.register(data => void seen.push(`c:${data}`));
      bus.register(() => void seen.push('never'), 'orders', 'deleted');
      await bus.post('orders', 'created', 1);
      await waitFor(() => seen.length >= 3);
      expect(seen.sort()).toEqual(['a:1', 'b:1', 'c:1']);
    });

    it('delivers decode(encode(data)) to handlers', async () => {
      const { bus } = await instance(scope());
      const got: unknown[] = [];
      bus.register(data => void got.push(data), 'codec');
      const when = new Date(Date.UTC(2024, 0, 2, 3, 4, 5));
      await bus.post('codec', 'x', {
        when,
        list: [1, 'two', null],
        nested: { ok: true },
        gone: undefined,
      });
      await bus.post('codec', 'none');
      await waitFor(() => got.length === 2);
      expect(got[0]).toEqual({
        when: when.toISOString(),
        list: [1, 'two', null],
        nested: { ok: true },
      });
      expect(got[1]).toBeUndefined();
    });

    it('matches every wildcard level, including * + event', async () => {
      const { bus } = await instance(scope());
      const hits: Record<string, string[]> = { all: [], source: [], exact: [], anySource: [] };
      bus.register((_d, e) => void hits.all.push(`${e.source}/${e.event}`));
      bus.register((_d, e) => void hits.source.push(`${e.source}/${e.event}`), 's1');
      bus.register((_d, e) => void hits.exact.push(`${e.source}/${e.event}`), 's1', 'e1', 'e2');
      bus.register((_d, e) => void hits.anySource.push(`${e.source}/${e.event}`), '*', 'e1');
      for (const [source, event] of [
        ['s1', 'e1'],
        ['s1', 'e2'],
        ['s1', 'e3'],
        ['s2', 'e1'],
        ['s2', 'e9'],
      ]) {
        await bus.post(source, event, null);
      }
      await waitFor(() => hits.all.length === 5);
      await waitFor(() => hits.anySource.length === 2);
      expect(hits.all).toEqual(['s1/e1', 's1/e2', 's1/e3', 's2/e1', 's2/e9']);
      expect(hits.source).toEqual(['s1/e1', 's1/e2', 's1/e3']);
      expect(hits.exact).toEqual(['s1/e1', 's1/e2']);
      expect(hits.anySource).toEqual(['s1/e1', 's2/e1']);
    });

    it('delivers one event once to a handler registered under several matching patterns', async () => {
      const { bus } = await instance(scope());
      const seen: string[] = [];
      const handler = (_d: unknown, e: HeraldEvent): void => void seen.push(e.id);
      bus.register(handler, 'users', 'created');
      bus.register(handler, 'users');
      bus.register(handler, '*', 'created');
      const { id } = await bus.post('users', 'created', {});
      await bus.post('users', 'marker', {});
      await waitFor(() => seen.length >= 2);
      expect(seen.filter(x => x === id)).toHaveLength(1);
    });

    it('unregisters at each level; disposers remove exactly their patterns', async () => {
      const { bus } = await instance(scope());
      const seen: string[] = [];
      const all = (): void => void seen.push('all');
      const src = (): void => void seen.push('src');
      const ev = (): void => void seen.push('ev');
      const marker: string[] = [];
      bus.register(all);
      bus.register(src, 'u');
      const dispose = bus.register(ev, 'u', 'e');
      bus.register(() => void marker.push('m'), 'marker');
      expect(bus.unregister(all)).toBe(true);
      expect(bus.unregister(all)).toBe(false);
      expect(bus.unregister(src, 'u')).toBe(true);
      expect(bus.unregister(src, 'other')).toBe(false);
      expect(dispose()).toBe(true);
      expect(dispose()).toBe(false);
      expect(() => bus.register('nope' as never)).toThrow(TypeError);
      expect(() => bus.unregister(undefined as never)).toThrow(TypeError);
      await bus.post('u', 'e', 1);
      await bus.post('marker', 'm', 1);
      await waitFor(() => marker.length === 1);
      expect(seen).toEqual([]);
    });

    it('keeps many sources posted in parallel apart', async () => {
      const { bus } = await instance(scope());
      const sources = 10;
      const per = Math.max(5, Math.round(20 * scale));
      const got = new Map<string, number[]>();
      for (let s = 0; s < sources; s++) {
        bus.register(data => void got.get(`src${s}`)!.push(data as number), `src${s}`, 'tick');
        got.set(`src${s}`, []);
      }
      await Promise.all(
        Array.from({ length: sources }, (_, s) =>
          Promise.all(
            Array.from({ length: per }, (_, i) => bus.post(`src${s}`, 'tick', s * 1000 + i)),
          ),
        ),
      );
      await waitFor(() => [...got.values()].every(list => list.length >= per));
      for (let s = 0; s < sources; s++) {
        const list = got.get(`src${s}`)!;
        expect(list).toHaveLength(per);
        expect(list.every(v => Math.floor(v / 1000) === s)).toBe(true);
      }
    });

    it('keeps the order the features promise (many senders, many events)', async () => {
      const name = scope();
      const receiver = await instance(name);
      const senders =
        features.reach === 'process'
          ? [receiver]
          : [receiver, await instance(name), await instance(name)];
      const per = Math.max(20, Math.round(200 * scale));
      const got: string[] = [];
      receiver.bus.register(data => void got.push(data as string), 'ordered');
      await Promise.all(
        senders.map(async (sender, s) => {
          const posts: Promise<unknown>[] = [];
          for (let i = 0; i < per; i++) posts.push(sender.bus.post('ordered', 'n', `${s}:${i}`));
          await Promise.all(posts);
        }),
      );
      await waitFor(() => got.length >= per * senders.length);
      expect(got).toHaveLength(per * senders.length);
      if (features.ordering !== 'none') {
        for (let s = 0; s < senders.length; s++) {
          const mine = got.filter(x => x.startsWith(`${s}:`)).map(x => Number(x.split(':')[1]));
          expect(mine).toEqual(Array.from({ length: per }, (_, i) => i));
        }
      }
    });

    it('isolates a throwing and a rejecting handler: the others still run, nothing escapes', async () => {
      const errors: unknown[] = [];
      const { bus } = await instance(scope(), { onHandlerError: error => void errors.push(error) });
      const ran: string[] = [];
      bus.register(() => {
        throw new Error('sync boom');
      }, 'iso');
      bus.register(async () => {
        throw new Error('async boom');
      }, 'iso');
      bus.register(() => void ran.push('ok'), 'iso');
      await bus.post('iso', 'x', 1);
      await bus.post('iso', 'y', 2);
      await waitFor(() => ran.length === 2 && errors.length >= 4);
      expect(
        errors
          .map(e => (e as Error).message)
          .slice(0, 2)
          .sort(),
      ).toEqual(['async boom', 'sync boom']);
      expect(bus.stats().failed).toBeGreaterThanOrEqual(4);
    });

    it('settles: ack after every handler succeeded, nack after a failure', async () => {
      const { bus, settlements } = await instance(scope());
      let release!: () => void;
      const gate = new Promise<void>(resolve => (release = resolve));
      bus.register(() => gate, 'settle', 'slow');
      bus.register(
        () => {
          throw new Error('no');
        },
        'settle',
        'bad',
      );
      await bus.post('settle', 'slow', 1);
      await waitFor(() => bus.stats().inFlight === 1);
      expect(settlements).toEqual([]);
      release();
      await waitFor(() => settlements.length === 1);
      expect(settlements[0]).toEqual({ outcome: 'ack' });
      await bus.post('settle', 'bad', 1);
      await waitFor(() => settlements.length >= 2);
      expect(settlements[1].outcome).toBe('nack');
    });

    when(
      features.redelivers,
      'redelivers a nacked event until a handler succeeds',
      'the transport does not redeliver (features.redelivers = false)',
      async () => {
        const { bus } = await instance(scope());
        const attempts: number[] = [];
        bus.register((_d, e) => {
          attempts.push(e.attempt);
          if (e.attempt < 2) throw new Error('first try fails');
        }, 'retry');
        await bus.post('retry', 'x', 1);
        await waitFor(() => attempts.length >= 2, { timeoutMs: 30_000 });
        expect(attempts.slice(0, 2)).toEqual([1, 2]);
      },
    );

    it('rejects bad input with a typed error and loses nothing else', async () => {
      const { bus } = await instance(scope());
      const got: unknown[] = [];
      bus.register(data => void got.push(data), 'good');
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      await expect(bus.post('', 'x', 1)).rejects.toThrow(InvalidEventError);
      await expect(bus.post('good', '*', 1)).rejects.toThrow(InvalidEventError);
      await expect(bus.post('*', 'x', 1)).rejects.toThrow(InvalidEventError);
      await expect(bus.post(42 as never, 'x', 1)).rejects.toThrow(InvalidEventError);
      await expect(bus.post('good', 'x', { n: 1n })).rejects.toThrow(SerializationError);
      await expect(bus.post('good', 'x', { items: [1, 2, 3, { when: NaN }] })).rejects.toThrow(
        'data.items[3].when',
      );
      await expect(bus.post('good', 'x', cyclic)).rejects.toThrow(SerializationError);
      await expect(bus.post('good', 'x', new Map())).rejects.toThrow(SerializationError);
      await expect(bus.post('good', 'x', 1, { key: [2n ** 63n] })).rejects.toThrow(
        InvalidEventError,
      );
      await expect(bus.post('good', 'x', 1, { unique: '' })).rejects.toThrow(InvalidEventError);
      await expect(bus.post('good', 'x', 1, { headers: { a: 1 as never } })).rejects.toThrow(
        InvalidEventError,
      );
      await bus.post('good', 'x', 'kept');
      await waitFor(() => got.length === 1);
      expect(got).toEqual(['kept']);
    });

    when(
      features.maxPayloadBytes !== undefined,
      'rejects a payload over the transport limit and keeps the rest',
      'the transport has no payload limit of its own',
      async () => {
        const { bus } = await instance(scope());
        const got: string[] = [];
        bus.register(data => void got.push(data as string), 'big');
        await expect(
          bus.post('big', 'x', 'a'.repeat(features.maxPayloadBytes! + 1)),
        ).rejects.toThrow(PayloadTooLargeError);
        await bus.post('big', 'x', 'small');
        await waitFor(() => got.length === 1);
        expect(got).toEqual(['small']);
      },
    );

    it('gives N deliveries for N identical posts', async () => {
      const { bus } = await instance(scope());
      let count = 0;
      bus.register(() => void count++, 'same');
      await Promise.all(
        Array.from({ length: 25 }, () => bus.post('same', 'x', { v: 1 }, { key: [1n] })),
      );
      await waitFor(() => count >= 25);
      expect(count).toBe(25);
    });

    it('carries key and headers', async () => {
      const { bus } = await instance(scope());
      const got: HeraldEvent[] = [];
      bus.register((_d, e) => void got.push(e), 'meta');
      await bus.post('meta', 'x', 1, {
        key: [-(2n ** 63n), 0n, 2n ** 63n - 1n, 7],
        headers: { traceparent: 't-1' },
      });
      await waitFor(() => got.length === 1);
      expect(got[0].key).toEqual([-(2n ** 63n), 0n, 2n ** 63n - 1n, 7n]);
      expect(got[0].headers).toEqual({ traceparent: 't-1' });
      expect(got[0].attempt).toBe(1);
      expect(typeof got[0].origin).toBe('string');
    });

    it('runs a unique event once and drops repeats within the TTL', async () => {
      const name = scope();
      const a = await instance(name, { unique: { ttlMs: 60_000 } });
      const others =
        features.uniqueScope === 'process'
          ? []
          : [await instance(name, { unique: { ttlMs: 60_000 } })];
      let runs = 0;
      for (const { bus } of [a, ...others]) bus.register(() => void runs++, 'uniq');
      const marker: number[] = [];
      a.bus.register(() => void marker.push(1), 'marker');
      const key = `job-${Date.now()}`;
      await a.bus.post('uniq', 'x', 1, { unique: key });
      await a.bus.post('uniq', 'x', 2, { unique: key });
      for (const { bus } of others) await bus.post('uniq', 'x', 3, { unique: key });
      await a.bus.post('marker', 'm', 1);
      await waitFor(() => runs >= 1 && marker.length === 1);
      await waitFor(() =>
        [a, ...others].every(({ bus }) => bus.stats().queued === 0 && bus.stats().inFlight === 0),
      );
      if (runs !== 1) {
        throw new Error(
          `a unique event ran ${runs} times: the bus does not deduplicate posts, a transport must honour envelope.unique itself ` +
            `(claim the key within features.uniqueScope for context.unique.ttlMs, e.g. with UniqueCache from nest-herald, and deliver only the first)`,
        );
      }
    });

    when(
      features.reach !== 'process',
      'reaches every instance sharing the medium',
      'reach is this process only',
      async () => {
        const name = scope();
        const [a, b, c] = [await instance(name), await instance(name), await instance(name)];
        const got = [0, 0, 0];
        [a, b, c].forEach(({ bus }, i) => bus.register(() => void got[i]++, 'fan'));
        await b.bus.post('fan', 'out', 1);
        await waitFor(() => got.every(n => n === 1));
      },
    );

    it('reports connected on status$, then rejects posts after close with TransportClosedError', async () => {
      const { bus } = await instance(scope());
      const status = await firstValueFrom(bus.status$.pipe(filter(s => s.state === 'connected')));
      expect(status.state).toBe('connected');
      await bus.close();
      await expect(bus.post('after', 'close', 1)).rejects.toThrow(TransportClosedError);
      expect(() => bus.postLocal('after', 'close', 1)).toThrow(TransportClosedError);
    });

    it('lets a handler still running at close finish before the transport closes', async () => {
      const { bus } = await instance(scope());
      let finished = false;
      bus.register(async () => {
        await new Promise(resolve => setTimeout(resolve, 50));
        finished = true;
      }, 'drain');
      await bus.post('drain', 'x', 1);
      await waitFor(() => bus.stats().inFlight === 1);
      await bus.close({ timeoutMs: 5000 });
      expect(finished).toBe(true);
    });
  });
}

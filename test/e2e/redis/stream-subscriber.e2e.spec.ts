import { Redis } from 'ioredis';
import { InvalidOptionsError, TransportClosedError, silentLogger } from '../../../lib/index.js';
import {
  StreamEntryError,
  StreamPublisher,
  StreamSubscriber,
  UnknownOperationError,
  decodeStreamEvent,
  encodeStreamEvent,
  fieldsToRecord,
  type DecodedStreamEvent,
  type StreamMessage,
  type StreamSubscriberOptions,
} from '../../../lib/redis/index.js';
import { REDIS_URL, hostPort, uniqueName } from '../../helpers/services.js';
import { TcpProxy } from '../../helpers/tcp-proxy.js';
import { waitFor } from '../../helpers/wait-for.js';

const admin = new Redis(REDIS_URL);
const subscribers: StreamSubscriber[] = [];
const keys: string[] = [];

function subscriber(
  options: Partial<StreamSubscriberOptions> & { stream: string },
): StreamSubscriber {
  const made = new StreamSubscriber({
    url: REDIS_URL,
    name: 'sub',
    logger: silentLogger,
    blockMs: 100,
    readBackoffInitialMs: 20,
    ...options,
  });
  subscribers.push(made);
  keys.push(made.cursorKey);
  return made;
}

function stream(prefix = 'sub'): string {
  const name = uniqueName(prefix);
  keys.push(name, `${name}:dead`);
  return name;
}

/** `total` entries `n` = 1, 2, ... added to `name`, 500 to a script call: a backlog in well under a second. */
async function fill(name: string, total: number): Promise<void> {
  for (let i = 0; i < total; i += 500)
    await admin.eval(
      "for i = 1, 500 do redis.call('XADD', KEYS[1], '*', 'n', tostring(ARGV[1] + i)) end",
      1,
      name,
      i,
    );
}

const KNOWN = new Set(['thing.create', 'thing.remove']);

/** Adds an event in the original's layout, as the Go publisher would. */
function add(streamName: string, operation: string, id: string): Promise<string | null> {
  const fields = encodeStreamEvent({
    action: { operation: () => operation, encode: () => ({ id }) },
  });
  return admin.xadd(streamName, '*', ...fields);
}

/** A typed-event handler: decodes, throws UnknownOperationError for operations it does not know. */
function events(seen: DecodedStreamEvent[], fail?: (event: DecodedStreamEvent) => boolean) {
  return (message: StreamMessage): void => {
    const event = decodeStreamEvent(message.fields, KNOWN);
    seen.push(event);
    if (fail?.(event)) throw new Error(`refusing ${event.fields.id}`);
  };
}

afterEach(async () => {
  await Promise.all(subscribers.splice(0).map(s => s.close()));
  if (keys.length) await admin.del(...keys.splice(0));
});

afterAll(() => admin.disconnect());

describe('StreamSubscriber, fan-out mode (the original subscriber tests)', () => {
  it('validates input and refuses a second handler or a closed subscriber', async () => {
    expect(() => new StreamSubscriber({ stream: 's', name: '' })).toThrow(InvalidOptionsError);
    const s = subscriber({ stream: stream() });
    await s.subscribe(() => undefined);
    await expect(s.subscribe(() => undefined)).rejects.toThrow(/already has a handler/);
    await expect(s.subscribe('nope' as never)).rejects.toThrow(TypeError);
    await s.close();
    const closed = subscriber({ stream: stream() });
    await closed.close();
    await expect(closed.subscribe(() => undefined)).rejects.toThrow(TransportClosedError);
  });

  it('skips history on first boot ($)', async () => {
    const name = stream();
    await add(name, 'thing.create', 'old-1');
    await add(name, 'thing.create', 'old-2');
    const seen: DecodedStreamEvent[] = [];
    const s = subscriber({ stream: name });
    await s.subscribe(events(seen));
    await add(name, 'thing.create', 'new-1');
    await waitFor(() => seen.length === 1);
    expect(seen[0].fields.id).toBe('new-1');
  });

  it('reads history on first boot when told to start at 0', async () => {
    const name = stream();
    await add(name, 'thing.create', 'old-1');
    const seen: DecodedStreamEvent[] = [];
    await subscriber({ stream: name, start: '0' }).subscribe(events(seen));
    await waitFor(() => seen.length === 1);
    expect(seen[0].fields.id).toBe('old-1');
  });

  it('keeps its position across a restart (the cursor key), and saves the last delivered id', async () => {
    const name = stream();
    const seen: DecodedStreamEvent[] = [];
    const first = subscriber({ stream: name, name: 'billing' });
    expect(first.cursorKey).toBe(`mainflux:cursor:billing:${name}`);
    await first.subscribe(events(seen));
    await add(name, 'thing.create', '1');
    const lastId = await add(name, 'thing.create', '2');
    await waitFor(async () => (await admin.get(first.cursorKey)) === lastId);
    const [[newest]] = await admin.xrevrange(name, '+', '-', 'COUNT', 1);
    expect(await admin.get(first.cursorKey)).toBe(newest);
    await first.close();
    await add(name, 'thing.create', '3');
    await add(name, 'thing.create', '4');
    const second = subscriber({ stream: name, name: 'billing' });
    await second.subscribe(events(seen));
    await waitFor(() => seen.length === 4);
    expect(seen.map(e => e.fields.id)).toEqual(['1', '2', '3', '4']);
  });

  it('skips and counts unknown operations', async () => {
    const name = stream();
    const seen: DecodedStreamEvent[] = [];
    const s = subscriber({ stream: name });
    await s.subscribe(events(seen));
    await add(name, 'alien.landed', 'x');
    await add(name, 'thing.remove', 'y');
    await waitFor(() => seen.length === 1);
    expect(seen[0].operation).toBe('thing.remove');
    expect(s.stats().unknown).toBe(1);
    expect(s.stats().retried).toBe(0);
  });

  it('retries a failing handler, then skips the entry and goes on', async () => {
    const name = stream();
    const seen: DecodedStreamEvent[] = [];
    const s = subscriber({ stream: name, handlerAttempts: 2, handlerRetryDelayMs: 10 });
    await s.subscribe(events(seen, event => event.fields.id === 'bad'));
    await add(name, 'thing.create', 'bad');
    await add(name, 'thing.create', 'next');
    await waitFor(() => seen.some(e => e.fields.id === 'next'));
    expect(seen.map(e => e.fields.id)).toEqual(['bad', 'bad', 'next']);
    expect(s.stats()).toMatchObject({ failed: 2, retried: 1, skipped: 1, handled: 1 });
  });

  it('close interrupts a blocked read', async () => {
    const s = subscriber({ stream: stream(), blockMs: 600_000 });
    await s.subscribe(() => undefined);
    await waitFor(() => s.reader.client.status === 'ready');
    await s.close();
    expect(s.reader.isClosed).toBe(true);
  });

  it('backs off on read errors (connection cut) and resumes from its cursor, losing nothing', async () => {
    const { host, port } = hostPort(REDIS_URL);
    const proxy = new TcpProxy(host, port);
    await proxy.start();
    try {
      const name = stream();
      const seen: DecodedStreamEvent[] = [];
      const s = subscriber({
        stream: name,
        url: proxy.url(REDIS_URL),
        readBackoffInitialMs: 20,
        readBackoffMaxMs: 100,
      });
      await s.subscribe(events(seen));
      await add(name, 'thing.create', '1');
      await waitFor(() => seen.length === 1);
      proxy.cut();
      await waitFor(() => s.stats().readErrors >= 2);
      await add(name, 'thing.create', '2');
      await add(name, 'thing.create', '3');
      proxy.restore();
      await waitFor(() => seen.length === 3);
      expect(seen.map(e => e.fields.id)).toEqual(['1', '2', '3']);
    } finally {
      await proxy.close();
    }
  });

  it('runs handlers one at a time in stream order by default', async () => {
    const name = stream();
    const order: string[] = [];
    let running = 0;
    let most = 0;
    const s = subscriber({ stream: name, start: '0' });
    for (let i = 0; i < 20; i++) await admin.xadd(name, '*', 'n', String(i));
    await s.subscribe(async message => {
      most = Math.max(most, ++running);
      await new Promise(resolve => setImmediate(resolve));
      order.push(message.fields.n);
      running--;
    });
    await waitFor(() => order.length === 20);
    expect(order).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
    expect(most).toBe(1);
  });
});

describe('StreamSubscriber, consumer-group mode', () => {
  // Acks go as one XACK per turn, its Command built without ioredis's
  // argument flattening; a client whose commands ioredis must shape itself
  // (friendly error stacks here; key prefixes, auto-pipelining) sends it the usual way.
  it.each([
    ['a plain client', {}],
    ['a client with friendly error stacks', { showFriendlyErrorStack: true }],
  ])('acks every entry of a batch with %s: none left pending', async (_, redis) => {
    const name = stream('acks');
    const s = subscriber({ stream: name, group: { name: 'g' }, count: 300, redis });
    let handled = 0;
    await s.subscribe(() => {
      handled++;
    });
    const pipeline = admin.pipeline();
    for (let i = 0; i < 700; i++) pipeline.xadd(name, '*', 'k', String(i));
    await pipeline.exec();
    await waitFor(() => handled === 700);
    await waitFor(async () => (await admin.xpending(name, 'g'))[0] === 0);
    await waitFor(() => s.stats().acked === 700);
  });

  it('acks only after the handler succeeded; a failure is redelivered with its delivery count', async () => {
    const name = stream('grp');
    const attempts: number[] = [];
    const s = subscriber({ stream: name, group: { name: 'g', nackRetryDelayMs: 10 } });
    let release!: () => void;
    const gate = new Promise<void>(resolve => (release = resolve));
    await s.subscribe(async message => {
      attempts.push(message.deliveries);
      if (message.deliveries === 1) throw new Error('first try fails');
      await gate;
    });
    await admin.xadd(name, '*', 'k', 'v');
    await waitFor(() => attempts.length === 2);
    expect(attempts).toEqual([1, 2]);
    // Still running: pending, not acknowledged.
    expect((await admin.xpending(name, 'g'))[0]).toBe(1);
    release();
    await waitFor(async () => (await admin.xpending(name, 'g'))[0] === 0);
    expect(s.stats()).toMatchObject({ acked: 1, nacked: 1, redelivered: 1 });
  });

  it('dead-letters an entry delivered more than maxDeliveries times (counted from XPENDING), atomically with its ack', async () => {
    const name = stream('dlq');
    const deliveries: number[] = [];
    const s = subscriber({
      stream: name,
      group: { name: 'g', maxDeliveries: 3, nackRetryDelayMs: 5 },
    });
    await s.subscribe(message => {
      deliveries.push(message.deliveries);
      throw new Error('poison');
    });
    const id = await admin.xadd(name, '*', 'order', '42');
    await waitFor(async () => (await admin.xlen(`${name}:dead`)) === 1);
    expect(deliveries).toEqual([1, 2, 3]);
    const [[, fields]] = await admin.xrange(`${name}:dead`, '-', '+');
    expect(fieldsToRecord(fields)).toEqual({
      order: '42',
      dead_reason: 'handler failed: poison',
      dead_stream: name,
      dead_id: id,
      dead_group: 'g',
      dead_deliveries: '3',
    });
    expect((await admin.xpending(name, 'g'))[0]).toBe(0);
    expect(s.stats().deadLettered).toBe(1);
  });

  it('dead-letters an entry the handler cannot decode (StreamEntryError) at once, without retries', async () => {
    const name = stream('undecodable');
    let calls = 0;
    const s = subscriber({
      stream: name,
      group: { name: 'g', maxDeliveries: 5, nackRetryDelayMs: 5 },
    });
    await s.subscribe(() => {
      calls++;
      throw new StreamEntryError('payload', 'missing');
    });
    await admin.xadd(name, '*', 'junk', '1');
    await waitFor(async () => (await admin.xlen(`${name}:dead`)) === 1);
    const [[, fields]] = await admin.xrange(`${name}:dead`, '-', '+');
    expect(fieldsToRecord(fields)).toMatchObject({
      junk: '1',
      dead_group: 'g',
      dead_deliveries: '1',
    });
    expect(fieldsToRecord(fields).dead_reason).toBe(
      "undecodable: stream entry field 'payload': missing",
    );
    expect(calls).toBe(1);
    expect((await admin.xpending(name, 'g'))[0]).toBe(0);
  });

  it('claims entries a dead consumer left pending (XAUTOCLAIM), with their delivery counts; dead-letters those over the limit', async () => {
    const name = stream('claim');
    await admin.xgroup('CREATE', name, 'g', '0', 'MKSTREAM');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await admin.xadd(name, '*', 'n', String(i)))!);
    // A consumer that read everything and died.
    await admin.xreadgroup('GROUP', 'g', 'ghost', 'COUNT', 10, 'STREAMS', name, '>');
    // One entry has already failed many times.
    await admin.xclaim(name, 'g', 'ghost', 0, ids[4], 'RETRYCOUNT', 5);
    const seen: StreamMessage[] = [];
    const s = subscriber({
      stream: name,
      group: { name: 'g', minIdleMs: 50, claimIntervalMs: 20, maxDeliveries: 5 },
    });
    await s.subscribe(message => void seen.push(message));
    await waitFor(() => seen.length === 4 && s.stats().deadLettered === 1);
    expect(seen.map(m => m.fields.n).sort()).toEqual(['0', '1', '2', '3']);
    expect(seen.every(m => m.deliveries === 2)).toBe(true);
    await waitFor(async () => (await admin.xpending(name, 'g'))[0] === 0);
    const [[, dead]] = await admin.xrange(`${name}:dead`, '-', '+');
    expect(fieldsToRecord(dead)).toMatchObject({ n: '4', dead_deliveries: '6', dead_id: ids[4] });
  });

  it('never lets another consumer claim work still running (heartbeats keep it fresh)', async () => {
    const name = stream('live');
    let release!: () => void;
    const gate = new Promise<void>(resolve => (release = resolve));
    const started: string[] = [];
    const slow = subscriber({
      stream: name,
      name: 'a',
      group: { name: 'g', minIdleMs: 1000, startId: '0' },
    });
    await slow.subscribe(async message => {
      started.push(`a:${message.id}`);
      await gate;
    });
    await admin.xadd(name, '*', 'k', 'v');
    await waitFor(() => started.length === 1);
    const thief = subscriber({
      stream: name,
      name: 'b',
      group: { name: 'g', minIdleMs: 1000, claimIntervalMs: 20 },
    });
    await thief.subscribe(message => void started.push(`b:${message.id}`));
    // Many claim rounds spanning several idle periods find nothing to take.
    await waitFor(() => thief.stats().claimRounds >= 120, { timeoutMs: 30_000 });
    expect(thief.stats().claimed).toBe(0);
    expect(started).toHaveLength(1);
    release();
    await waitFor(async () => (await admin.xpending(name, 'g'))[0] === 0);
  });

  it('records pending entries trimmed before anyone acked them as lost', async () => {
    const name = stream('lost');
    await admin.xgroup('CREATE', name, 'g', '0', 'MKSTREAM');
    for (let i = 0; i < 3; i++) await admin.xadd(name, '*', 'n', String(i));
    await admin.xreadgroup('GROUP', 'g', 'ghost', 'COUNT', 10, 'STREAMS', name, '>');
    await admin.xtrim(name, 'MAXLEN', 0);
    const s = subscriber({
      stream: name,
      group: { name: 'g', minIdleMs: 20, claimIntervalMs: 20 },
    });
    const seen: StreamMessage[] = [];
    await s.subscribe(message => void seen.push(message));
    await waitFor(() => s.stats().lost === 3);
    expect(seen).toEqual([]);
    expect((await admin.xpending(name, 'g'))[0]).toBe(0);
  });

  it('re-creates its group after NOGROUP and goes on reading', async () => {
    const name = stream('nogroup');
    const seen: string[] = [];
    const s = subscriber({ stream: name, group: { name: 'g', startId: '0' } });
    await s.subscribe(message => void seen.push(message.fields.n));
    await admin.xadd(name, '*', 'n', 'before');
    await waitFor(() => seen.length === 1);
    await admin.xgroup('DESTROY', name, 'g');
    await waitFor(() => s.stats().groupsRecreated >= 1);
    await admin.xadd(name, '*', 'n', 'after');
    await waitFor(() => seen.includes('after'));
  });

  it('a connection cut while reads are ahead loses nothing: replies lost on the wire leave their entries pending, claimed again', async () => {
    const { host, port } = hostPort(REDIS_URL);
    const proxy = new TcpProxy(host, port);
    await proxy.start();
    try {
      const name = stream('cut-ahead');
      const total = 5000;
      await fill(name, total);
      const seen = new Set<string>();
      const s = subscriber({
        stream: name,
        url: proxy.url(REDIS_URL),
        count: 100,
        concurrency: Infinity,
        readBackoffMaxMs: 100,
        group: { name: 'g', startId: '0', minIdleMs: 300, claimIntervalMs: 100 },
      });
      await s.subscribe(message => void seen.add(message.fields.n));
      // Behind by thousands: reads are in flight ahead when the connections go.
      await waitFor(() => seen.size >= 500);
      proxy.reset();
      await waitFor(() => seen.size === total);
      await waitFor(async () => (await admin.xpending(name, 'g'))[0] === 0);
      expect(s.stats().readErrors).toBeGreaterThanOrEqual(1);
      expect(s.stats().lost).toBe(0);
    } finally {
      await proxy.close();
    }
  });

  it('a NOGROUP that fails the reads sent ahead together is one reset, and nothing after the last id read is missed', async () => {
    const name = stream('nogroup-ahead');
    const total = 5000;
    await fill(name, total);
    const seen = new Set<string>();
    const s = subscriber({
      stream: name,
      count: 100,
      concurrency: Infinity,
      group: { name: 'g', startId: '0' },
    });
    await s.subscribe(message => void seen.add(message.fields.n));
    await waitFor(() => seen.size >= 500);
    // Redis busy for 300 ms while the reader keeps reads in flight (it is behind: each read
    // comes back full), then the group gone: every read queued meanwhile fails with NOGROUP.
    await admin.eval(
      "local t = redis.call('TIME'); local start = t[1] * 1e6 + t[2]; repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] - start > 300000; redis.call('XGROUP', 'DESTROY', KEYS[1], 'g')",
      1,
      name,
    );
    await waitFor(() => s.stats().groupsRecreated >= 1);
    await waitFor(() => seen.size === total);
    expect(s.stats()).toMatchObject({ groupsRecreated: 1, resets: 1 });
  });

  it('deletes idle consumers only when they hold nothing pending; deletes itself at close when idle', async () => {
    const name = stream('idle');
    await admin.xgroup('CREATE', name, 'g', '0', 'MKSTREAM');
    await admin.xadd(name, '*', 'n', '1');
    await admin.xgroup('CREATECONSUMER', name, 'g', 'empty-ghost');
    await admin.xreadgroup('GROUP', 'g', 'busy-ghost', 'COUNT', 10, 'STREAMS', name, '>');
    const s = subscriber({
      stream: name,
      group: {
        name: 'g',
        consumer: 'me',
        consumerTimeoutMs: 1,
        checkConsumersIntervalMs: 20,
        minIdleMs: 600_000,
      },
    });
    await s.subscribe(() => undefined);
    await admin.xadd(name, '*', 'n', '2');
    await waitFor(() => s.stats().consumersDeleted >= 1 && s.stats().acked === 1);
    const names = async (): Promise<string[]> =>
      ((await admin.xinfo('CONSUMERS', name, 'g')) as string[][])
        .map(row => fieldsToRecord(row.map(String)).name)
        .sort();
    expect(await names()).toEqual(['busy-ghost', 'me']);
    await s.close();
    expect(await names()).toEqual(['busy-ghost']);
  });

  it.each(['script', 'command'] as const)(
    'reads in batches (readMode %s) and acks them with one XACK per flush',
    async readMode => {
      const name = stream('batch');
      const s = subscriber({
        stream: name,
        count: 50,
        concurrency: Infinity,
        readMode,
        group: { name: 'g', startId: '0' },
      });
      await admin.xadd(name, '*', 'multi\nline', 'value with\nnewlines and ünïcödé ✓', 'empty', '');
      for (let i = 0; i < 300; i++) await admin.xadd(name, '*', 'n', String(i));
      const seen: StreamMessage[] = [];
      await s.subscribe(message => void seen.push(message));
      await waitFor(() => seen.length === 301);
      expect(seen[0].raw).toEqual([
        'multi\nline',
        'value with\nnewlines and ünïcödé ✓',
        'empty',
        '',
      ]);
      expect(seen.slice(1).map(m => m.fields.n)).toEqual(
        Array.from({ length: 300 }, (_, i) => String(i)),
      );
      await waitFor(async () => (await admin.xpending(name, 'g'))[0] === 0);
      // Redis has the acks before this client has read the XACK reply that counts them.
      await waitFor(() => s.stats().acked === 301);
      // The mode asked for is the mode used (a broken script would fall back to XREADGROUP).
      if (readMode === 'script') expect(s.stats().scriptReads).toBeGreaterThan(0);
      else expect(s.stats().scriptReads).toBe(0);
    },
  );

  it('reads a batch the read script returns in chunks (about 4 KB each) byte for byte, in order', async () => {
    const name = stream('chunks');
    const s = subscriber({
      stream: name,
      count: 100,
      concurrency: Infinity,
      group: { name: 'g', startId: '0' },
    });
    // Values around and past a chunk's size, multi-byte characters included: one read, several chunks.
    const values = [0, 1, 4095, 4096, 4097, 10_000, 3, 2048, 2048, 2048].map((size, i) =>
      'é🎉x'.repeat(size).slice(0, size).concat(String(i)),
    );
    for (let i = 0; i < 30; i++) await admin.xadd(name, '*', 'v', values[i % values.length]);
    const seen: StreamMessage[] = [];
    await s.subscribe(message => void seen.push(message));
    await waitFor(() => seen.length === 30);
    expect(seen.map(m => m.raw)).toEqual(
      Array.from({ length: 30 }, (_, i) => ['v', values[i % values.length]]),
    );
    expect(s.stats().scriptReads).toBeGreaterThan(0);
    expect(s.stats().nonUtf8).toBe(0);
  });

  it('reads ahead while behind, never past maxInFlight: what it holds is all that is pending, and each entry comes once as they settle', async () => {
    const name = stream('ahead');
    const s = subscriber({
      stream: name,
      count: 10,
      maxInFlight: 25,
      concurrency: Infinity,
      group: { name: 'g', startId: '0' },
    });
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) ids.push((await admin.xadd(name, '*', 'v', String(i)))!);
    const got: string[] = [];
    const held: (() => void)[] = [];
    let holding = true;
    await s.subscribeEntries((entry, entryHeld, deliveries) => {
      got.push(entry[0]);
      const settle = (): void => s.settleEntry(entryHeld, deliveries);
      if (holding) held.push(settle);
      else settle();
    });
    // Behind by 200 and settling nothing: reads (ahead) stop at maxInFlight, not one entry more in Redis's PEL.
    await waitFor(() => got.length === 25);
    await waitFor(async () => (await admin.xpending(name, 'g'))[0] === 25);
    for (let check = 0; check < 5; check++) {
      // A read sent past the bound would show here.
      expect((await admin.xpending(name, 'g'))[0]).toBe(25);
      expect(got).toHaveLength(25);
      await admin.ping();
    }
    holding = false;
    for (const settle of held.splice(0)) settle();
    await waitFor(() => got.length === 200);
    await waitFor(async () => (await admin.xpending(name, 'g'))[0] === 0);
    expect(got).toEqual(ids);
    expect(s.stats()).toMatchObject({ handled: 200, acked: 200, redelivered: 0 });
  });

  it("entry handler (the transport's way in): acks on settle, redelivers a failure, ignores a second settle, close waits for it", async () => {
    const name = stream('entries');
    const s = subscriber({ stream: name, group: { name: 'g', nackRetryDelayMs: 10 } });
    // Fan-out mode has no records to settle by.
    await expect(subscriber({ stream: name }).subscribeEntries(() => undefined)).rejects.toThrow(
      InvalidOptionsError,
    );
    const got: [string, readonly string[] | null, number][] = [];
    const later: (() => void)[] = [];
    await s.subscribeEntries((entry, held, deliveries) => {
      got.push([entry[0], entry[1], deliveries]);
      const value = entry[1]?.[1];
      if (value === 'fail' && deliveries === 1) {
        s.settleEntry(held, deliveries, new Error('first try fails'));
        s.settleEntry(held, deliveries); // a second settle of the same delivery: ignored
      } else if (value === 'throw') {
        s.settleEntry(held, deliveries); // settled, then throws: the throw is ignored
        throw new Error('after settling');
      } else if (value === 'hold') {
        later.push(() => s.settleEntry(held, deliveries));
      } else {
        s.settleEntry(held, deliveries);
      }
    });
    await expect(s.subscribe(() => undefined)).rejects.toThrow(InvalidOptionsError);
    const ok = await admin.xadd(name, '*', 'v', 'ok');
    const fail = await admin.xadd(name, '*', 'v', 'fail');
    const thrown = await admin.xadd(name, '*', 'v', 'throw');
    await waitFor(() => got.length === 4);
    expect(got).toEqual([
      [ok, ['v', 'ok'], 1],
      [fail, ['v', 'fail'], 1],
      [thrown, ['v', 'throw'], 1],
      [fail, ['v', 'fail'], 2],
    ]);
    await waitFor(async () => (await admin.xpending(name, 'g'))[0] === 0);
    expect(s.stats()).toMatchObject({
      handled: 3,
      acked: 3,
      nacked: 1,
      redelivered: 1,
      running: 0,
    });
    await admin.xadd(name, '*', 'v', 'hold');
    await waitFor(() => later.length === 1);
    expect(s.stats().running).toBe(1);
    const closed = s.close({ timeoutMs: 10_000 });
    setTimeout(() => later[0](), 50);
    await closed;
    // Settled while closing: acked before the connections went.
    expect((await admin.xpending(name, 'g'))[0]).toBe(0);
  });

  it("works with ioredis's enableAutoPipelining asked for: scripts, XCLAIM and XAUTOCLAIM go through (it is off on this package's connections)", async () => {
    const name = stream('autopipelining');
    const redis = { enableAutoPipelining: true };
    const publisher = new StreamPublisher<string>({
      url: REDIS_URL,
      stream: name,
      redis,
      logger: silentLogger,
      encode: v => ['v', v],
    });
    // A consumer that read an entry and died: left pending, for XAUTOCLAIM.
    await admin.xgroup('CREATE', name, 'g', '$', 'MKSTREAM');
    await admin.xadd(name, '*', 'v', 'orphan');
    await admin.xreadgroup('GROUP', 'g', 'dead', 'COUNT', 1, 'STREAMS', name, '>');
    const s = subscriber({
      stream: name,
      redis,
      group: { name: 'g', minIdleMs: 50, claimIntervalMs: 50, nackRetryDelayMs: 10 },
    });
    const seen: string[] = [];
    await s.subscribe(message => {
      seen.push(message.fields.v);
      // Failed once: delivered again through XCLAIM.
      if (message.fields.v === 'fail' && message.deliveries === 1) throw new Error('once');
    });
    try {
      expect(await publisher.publishAll(['a', 'fail', 'b'])).toHaveLength(3);
      await waitFor(() => seen.filter(v => v === 'fail').length === 2 && seen.includes('orphan'));
      await waitFor(async () => (await admin.xpending(name, 'g'))[0] === 0);
      expect(s.stats()).toMatchObject({ handled: 4, redelivered: 1 });
      expect(s.stats().claimed).toBeGreaterThanOrEqual(1);
    } finally {
      await publisher.close();
    }
  });

  it('treats UnknownOperationError as skip-and-ack', async () => {
    const name = stream('unknown');
    const s = subscriber({ stream: name, group: { name: 'g', startId: '0' } });
    await s.subscribe(() => {
      throw new UnknownOperationError('x.y');
    });
    await admin.xadd(name, '*', 'operation', 'x.y');
    await waitFor(() => s.stats().unknown === 1);
    await waitFor(async () => (await admin.xpending(name, 'g'))[0] === 0);
  });
});

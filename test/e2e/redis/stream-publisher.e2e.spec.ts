import { Redis } from 'ioredis';
import { TransportClosedError, silentLogger, type HeraldLogger } from '../../../lib/index.js';
import {
  EventDroppedError,
  EventNotWrittenError,
  StreamPublisher,
  StreamSubscriber,
  fieldsToRecord,
  type EventAction,
} from '../../../lib/redis/index.js';
import { XADD_BATCH } from '../../../lib/transports/redis/redis.scripts.js';
import { memoryLogger } from '../../helpers/memory-logger.js';
import { PrivateRedis } from '../../helpers/private-redis.js';
import { RespFaultProxy } from '../../helpers/resp-fault-proxy.js';
import { REDIS_URL, hostPort, uniqueName } from '../../helpers/services.js';
import { TcpProxy } from '../../helpers/tcp-proxy.js';
import { LENGTHS_ACROSS_POWERS_OF_TEN } from '../../helpers/utf8-lengths.js';
import { waitFor } from '../../helpers/wait-for.js';

const admin = new Redis(REDIS_URL);
const publishers: StreamPublisher<never>[] = [];
const proxies: TcpProxy[] = [];
const streams: string[] = [];

/** Items are strings written as one field `v`, so the stream shows publish order plainly. */
function makePublisher(
  options: Partial<ConstructorParameters<typeof StreamPublisher<string>>[0]> = {},
): StreamPublisher<string> {
  const stream = options.stream ?? uniqueName('pub');
  streams.push(stream);
  const made = new StreamPublisher<string>({
    url: REDIS_URL,
    logger: silentLogger,
    encode: value => ['v', value],
    drainInitialIntervalMs: 20,
    drainMaxBackoffMs: 100,
    ...options,
    stream,
  });
  publishers.push(made as unknown as StreamPublisher<never>);
  return made;
}

async function proxy(): Promise<TcpProxy> {
  const { host, port } = hostPort(REDIS_URL);
  const made = new TcpProxy(host, port);
  await made.start();
  proxies.push(made);
  return made;
}

async function values(stream: string, redis: Redis = admin): Promise<string[]> {
  const entries = await redis.xrange(stream, '-', '+');
  return entries.map(([, fields]) => fieldsToRecord(fields).v);
}

/** A group subscriber (group `g`, from the start) of `pub`'s stream, collecting each entry's `v`. */
async function groupReader(
  pub: StreamPublisher<string>,
  url: string,
  name: string,
  logger: HeraldLogger = silentLogger,
): Promise<{ sub: StreamSubscriber; got: string[] }> {
  const sub = new StreamSubscriber({
    url,
    logger,
    stream: pub.stream,
    name,
    blockMs: 50,
    group: { name: 'g', startId: '0' },
  });
  const got: string[] = [];
  await sub.subscribe(message => void got.push(message.fields.v));
  return { sub, got };
}

afterEach(async () => {
  await Promise.all(publishers.splice(0).map(p => p.close()));
  await Promise.all(proxies.splice(0).map(p => p.close()));
  if (streams.length) await admin.del(...streams.splice(0));
});

afterAll(() => admin.disconnect());

describe.each(['script', 'pipeline'] as const)(
  'StreamPublisher, writeMode %s (the original publisher tests, on a real Redis)',
  writeMode => {
    const publisher = (
      options: Parameters<typeof makePublisher>[0] = {},
    ): StreamPublisher<string> => makePublisher({ writeMode, ...options });

    it('publishes to the stream with XADD MAXLEN ~ and resolves publishAndWait to the entry id', async () => {
      const pub = publisher({ maxLen: 50 });
      pub.publish('a');
      const id = await pub.publishAndWait('b');
      const entries = await admin.xrange(pub.stream, '-', '+');
      expect(entries.map(([, f]) => f)).toEqual([
        ['v', 'a'],
        ['v', 'b'],
      ]);
      expect(entries[1][0]).toBe(id);
      for (let i = 0; i < 400; i++) pub.publish(String(i));
      await waitFor(() => pub.stats().written === 402);
      // The mode asked for is the mode used (a broken script would fall back to the pipeline).
      if (writeMode === 'script') expect(pub.stats().scriptWrites).toBeGreaterThan(0);
      else expect(pub.stats().scriptWrites).toBe(0);
      // Approximate trimming keeps at least maxLen and far fewer than were written.
      const length = await admin.xlen(pub.stream);
      expect(length).toBeGreaterThanOrEqual(50);
      expect(length).toBeLessThan(402);
    });

    it('writes typed events in the original layout by default', async () => {
      const stream = uniqueName('typed');
      streams.push(stream);
      const pub = new StreamPublisher({ url: REDIS_URL, stream, logger: silentLogger, writeMode });
      publishers.push(pub as unknown as StreamPublisher<never>);
      const action: EventAction = {
        operation: () => 'thing.remove',
        encode: () => ({ id: 't-1' }),
      };
      await pub.publishAndWait({
        action,
        orgId: 'o-1',
        occurredAt: '2024-01-02T03:04:05.123456789Z',
      });
      const [[, fields]] = await admin.xrange(stream, '-', '+');
      expect(fieldsToRecord(fields)).toEqual({
        operation: 'thing.remove',
        occurred_at: '2024-01-02T03:04:05.123456789Z',
        evt_org_id: 'o-1',
        evt_group_id: '',
        id: 't-1',
      });
    });

    it('absorbs a transient failure: the buffer retries and order is kept', async () => {
      const cut = await proxy();
      const pub = publisher({ url: cut.url(REDIS_URL) });
      await pub.publishAndWait('0');
      cut.cut();
      for (let i = 1; i <= 30; i++) pub.publish(String(i));
      await waitFor(() => pub.stats().writeErrors >= 2);
      cut.restore();
      await waitFor(() => pub.stats().written === 31);
      expect(await values(pub.stream)).toEqual(Array.from({ length: 31 }, (_, i) => String(i)));
      expect(pub.stats().dropped).toBe(0);
    });

    it('encodeOnWrite: encodes when writing (again at a retry); an item its encoder refuses rejects alone, counted', async () => {
      const cut = await proxy();
      const encoded: string[] = [];
      const pub = publisher({
        url: cut.url(REDIS_URL),
        encodeOnWrite: true,
        encode: value => {
          encoded.push(value);
          if (value === 'bad') throw new RangeError('no entry for bad');
          return ['v', [value, '!']];
        },
      });
      await pub.connection.whenReady();
      // Nothing is encoded at publish: the encoder's error comes with the write.
      cut.cut();
      const results = pub.publishAll(['a', 'bad', 'b']);
      const c = pub.publishAndWait('c');
      expect(encoded).toEqual([]);
      await waitFor(() => pub.stats().writeErrors >= 1);
      cut.restore();
      const [a, bad, b] = await results;
      expect(typeof a).toBe('string');
      expect(bad).toBeInstanceOf(RangeError);
      expect(typeof b).toBe('string');
      await expect(c).resolves.toEqual(expect.any(String));
      expect(await values(pub.stream)).toEqual(['a!', 'b!', 'c!']);
      expect(pub.stats()).toMatchObject({ written: 3, failed: 1, dropped: 0 });
      // Encoded once per attempt: a retried write encoded its items again.
      expect(encoded.filter(v => v === 'a').length).toBeGreaterThanOrEqual(1);
      pub.publish('bad');
      await waitFor(() => pub.stats().failed === 2);
      await expect(pub.publishAndWait('d')).resolves.toEqual(expect.any(String));
      expect(await values(pub.stream)).toEqual(['a!', 'b!', 'c!', 'd!']);
    });

    it('drops the oldest when the buffer is full: buffer 2, a..e with the drainer held gives a, d, e', async () => {
      const cut = await proxy();
      const pub = publisher({ url: cut.url(REDIS_URL), bufferSize: 2 });
      await pub.connection.whenReady();
      cut.cut();
      pub.publish('a');
      // The drainer holds `a` (its write failed; it waits to retry): b..e go to the buffer of 2.
      await waitFor(() => pub.stats().writeErrors >= 1);
      const b = pub.publishAndWait('b');
      pub.publish('c');
      pub.publish('d');
      pub.publish('e');
      await expect(b).rejects.toThrow(EventDroppedError);
      expect(pub.stats().dropped).toBe(2);
      cut.restore();
      await waitFor(() => pub.stats().written === 3);
      expect(await values(pub.stream)).toEqual(['a', 'd', 'e']);
    });

    it('returns synchronously from publish while saturated, and never throws for Redis trouble', async () => {
      const cut = await proxy();
      const pub = publisher({
        url: cut.url(REDIS_URL),
        bufferSize: 100,
        shutdownDrainTimeoutMs: 50,
      });
      cut.cut();
      for (let i = 0; i < 1000; i++) expect(pub.publish(String(i))).toBeUndefined();
      expect(pub.stats().published).toBe(1000);
      // The drainer runs after this synchronous loop: the buffer keeps the newest 100.
      expect(pub.stats().dropped).toBe(900);
      expect(pub.stats().buffered).toBe(100);
    });

    it('close drains what is buffered', async () => {
      const pub = publisher();
      for (let i = 0; i < 10; i++) pub.publish(String(i));
      const report = await pub.close();
      expect(report).toEqual({ unsent: 0, written: 10, dropped: 0 });
      expect(await values(pub.stream)).toEqual(Array.from({ length: 10 }, (_, i) => String(i)));
      expect(() => pub.publish('late')).toThrow(TransportClosedError);
      await expect(pub.publishAndWait('late')).rejects.toThrow(TransportClosedError);
    });

    it('close gives up after the shutdown drain timeout when Redis is down, and reports what was not written', async () => {
      const cut = await proxy();
      const pub = publisher({ url: cut.url(REDIS_URL), shutdownDrainTimeoutMs: 200 });
      await pub.connection.whenReady();
      cut.cut();
      const waiting = pub.publishAndWait('x');
      pub.publish('y');
      pub.publish('z');
      const report = await pub.close();
      expect(report.unsent).toBe(3);
      expect(report.written).toBe(0);
      await expect(waiting).rejects.toThrow(EventNotWrittenError);
    });

    it('fails a write Redis refuses for good (WRONGTYPE) without blocking the rest', async () => {
      const pub = publisher();
      const wrong = uniqueName('string-key');
      streams.push(wrong);
      await admin.set(wrong, 'not a stream');
      const refused = pub.publishAndWait('bad', wrong);
      const fine = pub.publishAndWait('good');
      await expect(refused).rejects.toThrow(/WRONGTYPE/);
      await expect(fine).resolves.toMatch(/^\d+-\d+$/);
      expect(pub.stats().failed).toBe(1);
    });

    it('writes a batch mixing streams and field layouts in order, one result per event', async () => {
      const other = uniqueName('other');
      streams.push(other);
      const pub = makePublisher({
        writeMode,
        encode: (value: string) => (value.startsWith('x') ? ['x', value, 'y', '1'] : ['v', value]),
      });
      pub.publish('a');
      pub.publish('b', other);
      const results = await pub.publishAll(['c', 'x1', 'x2', 'd']);
      expect(results.every(r => typeof r === 'string')).toBe(true);
      const [[, first]] = await admin.xrange(other, '-', '+');
      expect(first).toEqual(['v', 'b']);
      const entries = await admin.xrange(pub.stream, '-', '+');
      expect(entries.map(([, f]) => f)).toEqual([
        ['v', 'a'],
        ['v', 'c'],
        ['x', 'x1', 'y', '1'],
        ['x', 'x2', 'y', '1'],
        ['v', 'd'],
      ]);
      expect(entries.map(([id]) => id).slice(1)).toEqual(results);
    });

    it('writes every value byte for byte: empty, multi-byte, emoji, newlines, NUL', async () => {
      // The script takes each value as an argument whose byte length the publisher writes: a UTF-16 length would frame it wrong.
      const written = [
        '',
        'ascii',
        'é',
        'naïve café',
        '日本語',
        '🎉 x 🎉',
        'a\nb\r\n',
        'nul\0end',
        '',
      ];
      const pub = publisher();
      const results = await pub.publishAll(written);
      expect(results.every(r => typeof r === 'string')).toBe(true);
      expect(await values(pub.stream)).toEqual(written);
      // An all-ASCII batch after a non-ASCII one: sizes are counted afresh per batch.
      await pub.publishAll(['plain', '']);
      expect((await values(pub.stream)).slice(-2)).toEqual(['plain', '']);
    });

    it('frames values whose byte lengths cross powers of two and of ten', async () => {
      // 0x01020304 passes 16 M characters: a call of its own after the others.
      const sizes = [1, 255, 256, 257, 65535, 65536, 0x010203, 0x01020304, 3];
      const items = sizes.map((size, i) => String.fromCharCode(97 + i).repeat(size));
      const pub = publisher({ maxLen: 0 });
      const results = await pub.publishAll(items);
      expect(results.every(r => typeof r === 'string')).toBe(true);
      const got = await values(pub.stream);
      expect(got.map(v => `${v[0]}${v.length}`)).toEqual(items.map(v => `${v[0]}${v.length}`));
      expect(got).toEqual(items);
    });

    it('writes values whose UTF-8 length has more digits than their characters (the framing moves them up)', async () => {
      const items = LENGTHS_ACROSS_POWERS_OF_TEN;
      const pub = publisher({ maxLen: 0 });
      const results = await pub.publishAll(items);
      expect(results.every(r => typeof r === 'string')).toBe(true);
      expect(await values(pub.stream)).toEqual(items);
    });

    it('writes a batch of more than 65,536 values in order', async () => {
      const pub = publisher({ maxLen: 0, drainBatchSize: 100_000, bufferSize: 100_000 });
      const items = Array.from({ length: 70_000 }, (_, i) => String(i));
      const results = await pub.publishAll(items);
      expect(results.every(r => typeof r === 'string')).toBe(true);
      expect(await values(pub.stream)).toEqual(items);
    });

    it("writes to the key the client's keyPrefix names, as ioredis's own commands do", async () => {
      const pub = publisher({ redis: { keyPrefix: 'herald-prefix:' } });
      streams.push(`herald-prefix:${pub.stream}`);
      await pub.publishAll(['a', 'b']);
      expect(await values(`herald-prefix:${pub.stream}`)).toEqual(['a', 'b']);
      expect(await admin.exists(pub.stream)).toBe(0);
    });

    it('writes a batch whose values pass 16 M characters in order (the script in several calls)', async () => {
      const pub = publisher({ maxLen: 0 });
      const big = (c: string): string => c.repeat(6 * 1024 * 1024);
      const items = ['a', big('b'), 'c', big('d'), big('é'), 'f'];
      const results = await pub.publishAll(items);
      expect(results.every(r => typeof r === 'string')).toBe(true);
      const got = await values(pub.stream);
      expect(got.map(v => `${v[0]}${v.length}`)).toEqual(items.map(v => `${v[0]}${v.length}`));
      expect(got).toEqual(items);
      if (writeMode === 'script') expect(pub.stats().scriptWrites).toBe(1);
    });

    it('writes an affixed value whole, in runs of one affix object, mixed with plain entries in order', async () => {
      // Items `<affix key>:<value>`: the affix Redis writes around field `h`, one object per key.
      const affixes = new Map(
        ['a', 'b', 'é'].map(key => [key, { index: 1, prefix: `[${key}<`, suffix: `>${key}]` }]),
      );
      const pub = makePublisher({
        writeMode,
        encode: (item: string) => ['h', item.slice(2), 'p', String(item.length)],
        affix: (item: string) => affixes.get(item[0]),
      });
      // Runs of a, a, b, a, é and an entry without affix, values of 0 to 1,000 bytes.
      const items = ['a:1', 'a:', 'b:22', 'a:x'.padEnd(1002, 'y'), 'é:日本', 'n:plain', 'a:9'];
      const results = await pub.publishAll(items);
      expect(results.every(r => typeof r === 'string')).toBe(true);
      const entries = await admin.xrange(pub.stream, '-', '+');
      expect(entries.map(([, f]) => f)).toEqual(
        items.map(item => {
          const affix = affixes.get(item[0]);
          const value = item.slice(2);
          return [
            'h',
            affix ? affix.prefix + value + affix.suffix : value,
            'p',
            String(item.length),
          ];
        }),
      );
    });

    it('writes a json affix value as JSON string content, escaped only where JSON needs it', async () => {
      const affix = { index: 1, prefix: '["', suffix: '",1]', json: true };
      const pub = makePublisher({
        writeMode,
        encode: (item: string) => ['h', item],
        affix: () => affix,
      });
      const items = [
        '',
        'plain-id',
        'q"uote',
        'back\\slash',
        'tab\tnl\n\u0000',
        'é日本',
        '🎉',
        '\ud800x',
        'x'.repeat(300),
      ];
      const results = await pub.publishAll(items);
      expect(results.every(r => typeof r === 'string')).toBe(true);
      const entries = await admin.xrange(pub.stream, '-', '+');
      expect(entries.map(([, f]) => f[1])).toEqual(items.map(item => JSON.stringify([item, 1])));
    });

    it('writes a value given in parts as one value, byte for byte, mixed with whole values in order', async () => {
      // Items `<parts joined by |>`: field `h` in parts, field `n` whole.
      const pub = makePublisher({
        writeMode,
        encode: (item: string) =>
          item.startsWith('whole:')
            ? ['h', item]
            : ['h', item.split('|'), 'n', String(item.length)],
      });
      const items = [
        '["|id|",1]\n|{"a":1}',
        '|',
        'é|日本|🎉',
        'whole:x',
        'a\n|\n|\0|',
        '|'.repeat(300),
        // Parts repeating at their place (their bytes kept and copied): short, long, not ASCII, then changed.
        'é|a|' + 'k'.repeat(40) + '|1',
        'é|b|' + 'k'.repeat(40) + '|2',
        'é|c|' + 'k'.repeat(40) + '|3',
        'ü|c|' + 'k'.repeat(39) + '日|4',
        'é|c|' + 'k'.repeat(40) + '|5',
      ];
      const results = await pub.publishAll(items);
      expect(results.every(r => typeof r === 'string')).toBe(true);
      const entries = await admin.xrange(pub.stream, '-', '+');
      expect(entries.map(([, f]) => f)).toEqual(
        items.map(item =>
          item.startsWith('whole:')
            ? ['h', item]
            : ['h', item.split('|').join(''), 'n', String(item.length)],
        ),
      );
    });

    it('refuses an affix that names no value, or a value in parts', () => {
      const affix = (index: number) => () => ({ index, prefix: '<', suffix: '>' });
      expect(() => publisher({ affix: affix(0) }).publish('x')).toThrow(TypeError);
      expect(() => publisher({ affix: affix(3) }).publish('x')).toThrow(TypeError);
      expect(() =>
        publisher({ encode: () => ['h', ['a', 'b']], affix: affix(1) }).publish('x'),
      ).toThrow(/given whole/);
    });

    it('rejects an encoder result that is not a field list', () => {
      const pub = publisher({ encode: () => ['odd'] });
      expect(() => pub.publish('x')).toThrow(TypeError);
      expect(() => publisher({ encode: () => [['h'], 'v'] }).publish('x')).toThrow(
        /name each field with a string/,
      );
    });
  },
);

describe('StreamPublisher, two script writes in flight (the order guard)', () => {
  const faults: RespFaultProxy[] = [];
  afterEach(async () => {
    await Promise.all(faults.splice(0).map(f => f.close()));
  });

  const items = (tag: string): string[] => Array.from({ length: 300 }, (_, i) => `${tag}${i}`);
  /** The order guards a publisher left under its stream's name (gone a minute after its last write). */
  const guards = (pub: StreamPublisher<string>): Promise<string[]> =>
    admin.keys(`${pub.stream}*:herald-writer:*`);

  it('writes two publishAll batches as two writes in flight, in order, leaving a guard that expires', async () => {
    const pub = makePublisher();
    await pub.publishAndWait('first');
    const [a, b] = await Promise.all([pub.publishAll(items('a')), pub.publishAll(items('b'))]);
    expect([...a, ...b].every(id => typeof id === 'string')).toBe(true);
    expect(await values(pub.stream)).toEqual(['first', ...items('a'), ...items('b')]);
    expect(pub.stats()).toMatchObject({ overlappedWrites: 1, orderRefused: 0, written: 601 });
    const [guard, ...more] = await guards(pub);
    expect(more).toEqual([]);
    const ttl = await admin.pttl(guard);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
    await admin.del(guard);
  });

  it('writes small publishAll calls together: a batch ends at a call only once it holds 256 events', async () => {
    const pub = makePublisher();
    await pub.publishAndWait('first');
    const before = pub.stats().scriptWrites;
    const small = ['x', 'y', 'z'].map(tag => items(tag).slice(0, 50));
    await Promise.all(small.map(list => pub.publishAll(list)));
    expect(pub.stats().scriptWrites - before).toBe(1);
    expect(await values(pub.stream)).toEqual(['first', ...small.flat()]);
    await admin.del(...(await guards(pub)));
  });

  it('keeps order when Redis refuses the first of two writes in flight and would run the second', async () => {
    // Redis busy (another client's script) when the first write arrived, free
    // again for the second: without the guard the second batch would be
    // written, then the first retried after it.
    await admin.script('LOAD', XADD_BATCH.source);
    const { host, port } = hostPort(REDIS_URL);
    const proxy = new RespFaultProxy(host, port);
    await proxy.start();
    faults.push(proxy);
    const pub = makePublisher({ url: proxy.url(REDIS_URL) });
    await pub.publishAndWait('first');
    proxy.refuse(
      ([name, sha]) => name.toUpperCase() === 'EVALSHA' && sha === XADD_BATCH.sha,
      'BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.',
    );
    const [a, b] = await Promise.all([pub.publishAll(items('a')), pub.publishAll(items('b'))]);
    expect([...a, ...b].every(id => typeof id === 'string')).toBe(true);
    expect(proxy.refused).toBe(1);
    expect(await values(pub.stream)).toEqual(['first', ...items('a'), ...items('b')]);
    expect(pub.stats()).toMatchObject({ orderRefused: 1, written: 601, failed: 0, dropped: 0 });
    await admin.del(...(await guards(pub)));
  });

  it('loses nothing and keeps order when the connection is cut with two writes in flight', async () => {
    const cut = await proxy();
    const logger = memoryLogger();
    const pub = makePublisher({ url: cut.url(REDIS_URL), logger });
    await pub.publishAndWait('first');
    const sent: string[] = [];
    const results: Promise<readonly (string | Error)[]>[] = [];
    const pair = (round: number): void => {
      for (const half of ['a', 'b']) {
        const list = items(`${round}${half}-`);
        sent.push(...list);
        results.push(pub.publishAll(list));
      }
    };
    // Pairs of batches keep two writes in flight; the connection is cut under them, twice.
    let round = 0;
    for (const written of [1200, 3000]) {
      while (pub.stats().written < written) {
        pair(round++);
        await results[results.length - 1];
      }
      pair(round++);
      // Sent (the drainer runs in a microtask), not yet answered: then cut.
      await new Promise(resolve => setImmediate(resolve));
      cut.reset();
    }
    for (let more = 0; more < 3; more++) pair(round++);
    const settled = (await Promise.all(results)).flat();
    expect(settled.every(id => typeof id === 'string')).toBe(true);
    expect(pub.stats()).toMatchObject({ failed: 0, dropped: 0 });
    expect(pub.stats().overlappedWrites).toBeGreaterThan(0);
    expect(cut.accepted).toBeGreaterThanOrEqual(3);
    // A cut met writes in flight: they failed and were retried (not only
    // writes held back while the connection was down).
    expect(logger.lines.some(line => line.includes('stream-write-retry'))).toBe(true);
    // A write whose reply the cut lost may be written again; first occurrences keep publish order.
    const seen = await values(pub.stream);
    expect(seen.filter((value, index) => seen.indexOf(value) === index)).toEqual([
      'first',
      ...sent,
    ]);
    await admin.del(...(await guards(pub)));
  });

  it('sends a write the guard refused again at once when the write before it failed for good (no back-off)', async () => {
    // The first batch goes to a key that is no stream: every XADD refused
    // (WRONGTYPE, not retried), so its write leaves no token and the second
    // is refused for order. A back-off (a minute here) would stall it.
    const notStream = uniqueName('string');
    streams.push(notStream);
    await admin.set(notStream, 'x');
    const pub = makePublisher({ drainInitialIntervalMs: 60_000, drainMaxBackoffMs: 60_000 });
    await pub.publishAndWait('first');
    const [a, b] = await Promise.all([
      pub.publishAll(items('a'), notStream),
      pub.publishAll(items('b')),
    ]);
    expect(a.every(result => result instanceof Error && /WRONGTYPE/.test(result.message))).toBe(
      true,
    );
    expect(b.every(id => typeof id === 'string')).toBe(true);
    expect(await values(pub.stream)).toEqual(['first', ...items('b')]);
    expect(pub.stats()).toMatchObject({ orderRefused: 1, failed: 300, written: 301 });
    await admin.del(...(await guards(pub)));
  });
});

describe('StreamPublisher against a Redis that restarts (private, appendonly + appendfsync always)', () => {
  const server = new PrivateRedis(['--enable-debug-command', 'yes']);

  beforeAll(() => server.start());
  afterAll(() => server.stop());

  it('delivers every buffered event, in order, across a restart under publish load', async () => {
    const client = new Redis(server.url);
    const pub = makePublisher({ url: server.url, bufferSize: 100_000 });
    const total = 3000;
    let next = 0;
    const pump = setInterval(() => {
      for (let i = 0; i < 50 && next < total; i++) pub.publish(String(next++));
    }, 2);
    try {
      await waitFor(() => pub.stats().written >= 500);
      await server.restart();
      await waitFor(() => next === total);
      await waitFor(() => pub.stats().written >= total, { timeoutMs: 30_000 });
    } finally {
      clearInterval(pump);
    }
    expect(pub.stats().writeErrors).toBeGreaterThanOrEqual(1);
    expect(pub.stats().dropped).toBe(0);
    const seen = await values(pub.stream, client);
    // A write answered after the crash may be repeated (its reply was lost); first occurrences keep posting order.
    const first = seen.filter((value, index) => seen.indexOf(value) === index).map(Number);
    expect(first).toEqual(Array.from({ length: total }, (_, i) => i));
    client.disconnect();
  });

  it('loads its script again after SCRIPT FLUSH (NOSCRIPT: the same call as EVAL), writing every value', async () => {
    const client = new Redis(server.url);
    const pub = makePublisher({ url: server.url, writeMode: 'script' });
    await pub.connection.whenReady();
    await client.script('FLUSH');
    await pub.publishAll(['a', 'é'.repeat(50)]);
    await client.script('FLUSH');
    await pub.publishAll(['b', '€'.repeat(334)]);
    expect(await values(pub.stream, client)).toEqual(['a', 'é'.repeat(50), 'b', '€'.repeat(334)]);
    // Each call answered at once (NOSCRIPT, then EVAL within it): no write failed and was retried.
    expect(pub.stats().scriptWrites).toBe(2);
    expect(pub.stats().writeErrors).toBe(0);
    client.disconnect();
  });

  it('a group subscriber loads its read script again after SCRIPT FLUSH, losing nothing', async () => {
    const client = new Redis(server.url);
    const pub = makePublisher({ url: server.url, writeMode: 'script' });
    const { sub, got } = await groupReader(pub, server.url, 'reflush');
    try {
      await pub.publishAll(['a', 'b']);
      await waitFor(() => got.length === 2);
      await client.script('FLUSH');
      const reads = sub.stats().scriptReads;
      await pub.publishAll(['c', 'd']);
      await waitFor(() => got.length === 4);
      expect(got).toEqual(['a', 'b', 'c', 'd']);
      // Read by the script after the flush too (NOSCRIPT answered with EVAL), not by the fallback.
      expect(sub.stats().scriptReads).toBeGreaterThan(reads);
      expect(sub.stats().readErrors).toBe(0);
      expect(await client.xpending(pub.stream, 'g')).toEqual([0, null, null, null]);
    } finally {
      await sub.close();
      client.disconnect();
    }
  });

  it('sends a batch of more than 65,536 values as two script calls, in order', async () => {
    const client = new Redis(server.url);
    const pub = makePublisher({
      url: server.url,
      writeMode: 'script',
      maxLen: 0,
      drainBatchSize: 100_000,
      bufferSize: 100_000,
    });
    try {
      // Loaded first (EVAL on NOSCRIPT), so the count below is of this batch's calls alone.
      await pub.publishAndWait('first');
      await client.config('RESETSTAT');
      const items = Array.from({ length: 70_000 }, (_, i) => String(i));
      await pub.publishAll(items);
      expect(await values(pub.stream, client)).toEqual(['first', ...items]);
      expect(/cmdstat_evalsha:calls=(\d+)/.exec(await client.info('commandstats'))?.[1]).toBe('2');
      expect(pub.stats().scriptWrites).toBe(2);
    } finally {
      client.disconnect();
    }
  });

  it('reconnects and retries a batch Redis does not answer within writeTimeoutMs', async () => {
    const client = new Redis(server.url);
    const warnings: string[] = [];
    const pub = makePublisher({
      url: server.url,
      writeTimeoutMs: 150,
      logger: { ...silentLogger, warn: message => void warnings.push(message) },
    });
    await pub.publishAndWait('before');
    // The server stalls (as a dead peer would): the batch gets no answer in time.
    const stall = client.call('DEBUG', 'SLEEP', '1');
    await waitFor(async () => {
      pub.publish('during');
      return warnings.some(w => w.includes('within 150 ms, reconnecting'));
    });
    await stall;
    await waitFor(async () => (await values(pub.stream, client)).includes('during'));
    const seen = await values(pub.stream, client);
    expect(seen[0]).toBe('before');
    client.disconnect();
  });

  it('writes one batch at a time, in order, losing nothing, where the ACL refuses the order guard key', async () => {
    const client = new Redis(server.url);
    const stream = uniqueName('acl');
    streams.push(stream);
    // The stream's own key only: the guard key (named after it) is refused.
    await client.call('ACL', 'SETUSER', 'streamonly', 'on', 'nopass', `~${stream}`, '+@all');
    const url = `redis://streamonly@127.0.0.1:${server.port}`;
    const warnings: string[] = [];
    const logger = { ...silentLogger, warn: (message: string) => void warnings.push(message) };
    const pub = makePublisher({ url, logger, stream });
    try {
      const items = (tag: string): string[] => Array.from({ length: 300 }, (_, i) => `${tag}${i}`);
      const [a, b] = await Promise.all([pub.publishAll(items('a')), pub.publishAll(items('b'))]);
      expect([...a, ...b].every(id => typeof id === 'string')).toBe(true);
      const entries = await client.xrange(stream, '-', '+');
      expect(entries.map(([, fields]) => fieldsToRecord(fields).v)).toEqual([
        ...items('a'),
        ...items('b'),
      ]);
      expect(warnings.filter(w => w.includes('write-guard-refused'))).toHaveLength(1);
      // Still the script, not the pipeline fallback; and one write at a time from then on.
      expect(warnings.some(w => w.includes('using a pipeline'))).toBe(false);
      const written = pub.stats();
      expect(written.scriptWrites).toBeGreaterThan(0);
      await pub.publishAll(items('c')).then(() => pub.publishAll(items('d')));
      await Promise.all([pub.publishAll(items('e')), pub.publishAll(items('f'))]);
      expect(pub.stats().overlappedWrites).toBe(written.overlappedWrites);
    } finally {
      client.disconnect();
    }
  });

  it('falls back to a pipeline (publisher) and to XREADGROUP (subscriber) where scripts are refused', async () => {
    const client = new Redis(server.url);
    await client.call(
      'ACL',
      'SETUSER',
      'noscripts',
      'on',
      'nopass',
      '~*',
      '&*',
      '+@all',
      '-@scripting',
    );
    const url = `redis://noscripts@127.0.0.1:${server.port}`;
    const warnings: string[] = [];
    const logger = { ...silentLogger, warn: (message: string) => void warnings.push(message) };
    const pub = makePublisher({ url, logger, writeMode: 'script' });
    const { sub, got } = await groupReader(pub, url, 'fallback', logger);
    try {
      await pub.publishAndWait('a');
      await pub.publishAndWait('b');
      await waitFor(() => got.length === 2);
      expect(got).toEqual(['a', 'b']);
      expect(pub.stats().scriptWrites).toBe(0);
      expect(sub.stats().scriptReads).toBe(0);
      expect(warnings.some(w => w.includes('using a pipeline'))).toBe(true);
      expect(warnings.some(w => w.includes('using XREADGROUP'))).toBe(true);
      // The command refused, not a key: nothing said of the order guard.
      expect(warnings.some(w => w.includes('write-guard-refused'))).toBe(false);
    } finally {
      await sub.close();
      client.disconnect();
    }
  });
});

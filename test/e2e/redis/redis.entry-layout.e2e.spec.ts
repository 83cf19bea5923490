import { Redis } from 'ioredis';
import {
  EventBus,
  silentLogger,
  type Codec,
  type HeraldEvent,
  type HeraldLogger,
  type PostReceipt,
} from '../../../lib/index.js';
import {
  StreamSubscriber,
  decodeEnvelopeFlat,
  fieldsToRecord,
  type RedisTransportOptions,
} from '../../../lib/redis/index.js';
import { memoryLogger } from '../../helpers/memory-logger.js';
import { RedisBuses } from './redis-buses.js';
import { REDIS_URL, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';

// The herald layout's entry layouts (heraldEntry): compact by default, one
// field with a JSON header and two fields as earlier versions wrote; readers
// read all three, in one stream.

const admin = new Redis(REDIS_URL);
const redis = new RedisBuses(admin);
const subscribers: StreamSubscriber[] = [];

/** The payload is the data's text as it is: empty, newlines and all. */
const text: Codec = {
  encode: data => String(data),
  decode: payload => payload,
};

function instance(options: RedisTransportOptions, logger?: HeraldLogger): Promise<EventBus> {
  return redis.instance(options, { logger, codec: text });
}

const stream = (prefix: string): string => redis.stream(prefix);

afterEach(async () => {
  await redis.closeBuses();
  await Promise.all(subscribers.splice(0).map(s => s.close({ timeoutMs: 500 })));
  await redis.deleteKeys();
});

afterAll(() => admin.disconnect());

/** What each post carries, the awkward cases included. */
const POSTS: readonly {
  data: string;
  key?: bigint[];
  headers?: Record<string, string>;
}[] = [
  { data: '{"n":1}' },
  { data: '' },
  { data: 'line 1\nline 2\n\n' },
  { data: '\n' },
  { data: 'créé 🎉 \u2028', headers: { 'x-é': 'a"b\nc', trace: '' } },
  { data: 'keyed', key: [7n, -1n, 2n ** 63n - 1n] },
];

/** What a handler saw of an event. */
function seen(event: HeraldEvent): unknown {
  return {
    id: event.id,
    data: event.data,
    key: event.key,
    headers: event.headers,
    unique: event.unique,
  };
}

/** Each of {@link POSTS} in turn, then one with `unique: 'u-1'` and data `'once'`: their receipts. */
async function postAll(writer: EventBus): Promise<PostReceipt[]> {
  const posted: PostReceipt[] = [];
  for (const post of POSTS)
    posted.push(
      await writer.post('orders', 'created', post.data, { key: post.key, headers: post.headers }),
    );
  posted.push(await writer.post('orders', 'created', 'once', { unique: 'u-1' }));
  return posted;
}

describe('redis transport entry layout (heraldEntry)', () => {
  it.each(['one-field', 'two-field'] as const)(
    'writes %s entries byte for byte: the header JSON, then the payload as it is',
    async heraldEntry => {
      const name = stream(`layout-${heraldEntry}`);
      const writer = await instance({ stream: name, intake: false, heraldEntry });
      const posted = await postAll(writer);
      const entries = await admin.xrange(name, '-', '+');
      expect(entries.map(([id]) => id)).toEqual(posted.map(receipt => receipt.ref));
      entries.forEach(([, fields], i) => {
        const data = i < POSTS.length ? POSTS[i].data : 'once';
        const header =
          heraldEntry === 'one-field'
            ? fields[1].slice(0, fields[1].indexOf('\n'))
            : (fields[1] as string);
        const members = JSON.parse(header) as unknown[];
        expect(header).toBe(JSON.stringify(members));
        expect(members[0]).toBe(posted[i].id);
        expect(fields).toEqual(
          heraldEntry === 'one-field'
            ? ['herald', `${header}\n${data}`]
            : ['herald', header, 'payload', data],
        );
      });
      const header = (i: number): unknown[] =>
        JSON.parse(entries[i][1][1].split('\n')[0]) as unknown[];
      expect(header(4)[7]).toEqual({ 'x-é': 'a"b\nc', trace: '' });
      expect(header(5)[5]).toBe(`7,-1,${2n ** 63n - 1n}`);
      expect(header(POSTS.length)[6]).toBe('u-1');
    },
  );

  it('writes compact entries by default: `~`, id, source, event, origin and epoch ms, then the payload; a key, headers or unique as one-field', async () => {
    const name = stream('layout-compact');
    const writer = await instance({ stream: name, intake: false });
    const before = Date.now();
    const posted = await postAll(writer);
    const after = Date.now();
    const entries = await admin.xrange(name, '-', '+');
    expect(entries.map(([id]) => id)).toEqual(posted.map(receipt => receipt.ref));
    entries.forEach(([, fields], i) => {
      const post = POSTS[i] as (typeof POSTS)[number] | undefined;
      expect(fields).toHaveLength(2);
      expect(fields[0]).toBe('herald');
      const value = fields[1];
      if (post && !post.key && !post.headers) {
        // Compact: the members by the grammar, the time the post's own millisecond.
        const match = /^~(\S+) orders created (\S+) (\d+)\n/.exec(value)!;
        expect(match).not.toBeNull();
        expect(match[1]).toBe(posted[i].id);
        expect(match[2]).toBe(writer.origin);
        expect(Number(match[3])).toBeGreaterThanOrEqual(before);
        expect(Number(match[3])).toBeLessThanOrEqual(after);
        expect(value.slice(match[0].length)).toBe(post.data);
      } else {
        // What the compact header cannot say: the JSON header, as one-field writes it.
        const header = JSON.parse(value.slice(0, value.indexOf('\n'))) as unknown[];
        expect(header[0]).toBe(posted[i].id);
        expect(value.slice(value.indexOf('\n') + 1)).toBe(post?.data ?? 'once');
      }
    });
  });

  it('reads a stream of two-field, one-field and compact entries in order: broadcast, work queue and fan-out', async () => {
    const name = stream('mixed');
    const group = uniqueName('workers');
    // Readers first (broadcast groups start at '$'), then earlier versions' writers and this one's, in turn.
    const readers = [
      await instance({ stream: name }),
      await instance({ stream: name }),
      await instance({ stream: name, mode: 'work-queue', group }),
    ];
    const got = readers.map(() => [] as unknown[]);
    readers.forEach((bus, i) => bus.register((_data, event) => void got[i].push(seen(event))));
    const fanOut = new StreamSubscriber({
      url: REDIS_URL,
      stream: name,
      name: uniqueName('fan'),
      start: '0',
      blockMs: 100,
      logger: silentLogger,
    });
    subscribers.push(fanOut);
    redis.keys.push(fanOut.cursorKey);
    const decoded: unknown[] = [];
    await fanOut.subscribe(message => {
      const envelope = decodeEnvelopeFlat(message.raw);
      decoded.push({
        id: envelope.id,
        data: envelope.payload,
        key: envelope.key,
        headers: envelope.headers,
        unique: envelope.unique,
      });
    });
    const writers = [
      await instance({ stream: name, intake: false, heraldEntry: 'two-field' }),
      await instance({ stream: name, intake: false, heraldEntry: 'one-field' }),
      await instance({ stream: name, intake: false }),
    ];
    const expected: unknown[] = [];
    for (const [i, post] of [...POSTS, ...POSTS, ...POSTS].entries()) {
      const writer = writers[i % 3];
      const receipt = await writer.post('orders', 'created', post.data, {
        key: post.key,
        headers: post.headers,
      });
      expected.push({
        id: receipt.id,
        data: post.data,
        key: post.key,
        headers: post.headers ?? {},
        unique: undefined,
      });
    }
    const entries = await admin.xrange(name, '-', '+');
    expect(entries.map(([, fields]) => fields.length)).toEqual(
      expected.map((_, i) => (i % 3 === 0 ? 4 : 2)),
    );
    // The default writer's plain posts went compact.
    const compact = entries.filter(([, fields]) => fields[1].startsWith('~'));
    expect(compact.length).toBe(
      [...POSTS, ...POSTS, ...POSTS].filter((p, i) => i % 3 === 2 && !p.key && !p.headers).length,
    );
    await waitFor(() => got.every(list => list.length === expected.length));
    await waitFor(() => decoded.length === expected.length);
    for (const list of got) expect(list).toEqual(expected);
    expect(decoded).toEqual(
      expected.map(e => ({
        ...(e as object),
        headers: Object.keys((e as { headers: object }).headers).length
          ? (e as { headers: object }).headers
          : undefined,
      })),
    );
    // A unique event of any layout runs once across the instances reading the stream.
    for (const writer of writers)
      await writer.post('orders', 'created', 'once', { unique: uniqueName('u') });
    await waitFor(
      () =>
        got.reduce((sum, list) => sum + list.length, 0) === 3 * expected.length + 3 &&
        decoded.length === expected.length + 3,
    );
    expect(decoded.slice(-3).map(e => (e as { unique?: string }).unique)).toEqual([
      expect.stringMatching(/^u_/),
      expect.stringMatching(/^u_/),
      expect.stringMatching(/^u_/),
    ]);
    for (const bus of readers) expect(bus.stats().transport).toMatchObject({ decodeErrors: 0 });
  });

  it.each(['broadcast', 'work-queue'] as const)(
    '%s: an entry of neither layout is dead-lettered at once, counted and logged; the next is handled',
    async mode => {
      const name = stream(`bad-${mode}`);
      const logger = memoryLogger();
      const reader = await instance(
        { stream: name, mode, group: uniqueName('g'), startId: '0' },
        logger,
      );
      const handled: unknown[] = [];
      reader.register(data => void handled.push(data));
      const good = (payload: string): string =>
        `${JSON.stringify([uniqueName('id'), 'orders', 'created', 'o', 't'])}\n${payload}`;
      const bad = [
        ['herald', '["i","orders","created","o","t"]'], // no newline, no payload field
        ['herald', '{"not":"an array"}\nx'],
        ['herald', '["i",\n"orders","created","o","t"]\nx'], // a newline inside the header
        ['payload', 'x'], // no header at all
        ['herald', '~i orders created o\nx'], // compact, its time left out
        ['herald', '~i orders created o 1'], // compact, no newline
      ];
      const ids: string[] = [];
      for (const fields of bad) ids.push((await admin.xadd(name, '*', ...fields))!);
      await admin.xadd(name, '*', 'herald', good('after\nthe bad ones'));
      await waitFor(() => handled.length === 1);
      expect(handled).toEqual(['after\nthe bad ones']);
      await waitFor(async () => (await admin.xlen(`${name}:dead`)) === bad.length);
      const dead = await admin.xrange(`${name}:dead`, '-', '+');
      expect(dead.map(([, fields]) => fieldsToRecord(fields).dead_id)).toEqual(ids);
      const reasons = dead.map(([, fields]) => fieldsToRecord(fields).dead_reason);
      expect(reasons).toEqual([
        expect.stringMatching(/^undecodable: .*'payload': missing, and no newline/),
        expect.stringMatching(/^undecodable: .*'herald': not an array/),
        expect.stringMatching(/^undecodable: .*'herald': not JSON/),
        expect.stringMatching(/^undecodable: .*'herald': missing/),
        expect.stringMatching(
          /^undecodable: .*'herald': compact header: 'orders created o' is not 'source event origin milliseconds'/,
        ),
        expect.stringMatching(/^undecodable: .*'herald': compact header: no newline ends it/),
      ]);
      // The dead letter keeps the entry's own fields.
      expect(dead[0][1].slice(0, 2)).toEqual(bad[0]);
      expect(reader.stats().transport).toMatchObject({
        decodeErrors: bad.length,
        'subscriber.undecodable': bad.length,
        'subscriber.deadLettered': bad.length,
      });
      const logged = logger.lines.filter(line => line.includes('entry-not-an-event'));
      expect(logged).toHaveLength(bad.length);
      for (const id of ids) expect(logged.some(line => line.includes(`id=${id}`))).toBe(true);
    },
  );
});

import { Redis } from 'ioredis';
import { EventBus, silentLogger, type HeraldLogger } from '../../../lib/index.js';
import {
  RedisTransport,
  StreamSubscriber,
  fieldsToRecord,
  type StreamMessage,
  type StreamSubscriberOptions,
} from '../../../lib/redis/index.js';
import { PrivateRedis } from '../../helpers/private-redis.js';
import { REDIS_URL, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';

// Issue 20: restarts, trimmed-unread entries, undecodable entries, fan-out close timeout.

const admin = new Redis(REDIS_URL);
const subscribers: StreamSubscriber[] = [];
const keys: string[] = [];

/** A logger that keeps what it is told. */
function recording(): HeraldLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    log: () => undefined,
    debug: () => undefined,
    warn: message => void lines.push(`WARN ${message}`),
    error: message => void lines.push(`ERROR ${message}`),
  };
}

function stream(prefix: string): string {
  const name = uniqueName(prefix);
  keys.push(name, `${name}:dead`);
  return name;
}

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

afterEach(async () => {
  await Promise.all(subscribers.splice(0).map(s => s.close({ timeoutMs: 500 })));
  if (keys.length) await admin.del(...keys.splice(0));
});

afterAll(() => admin.disconnect());

describe.each([
  ['without persistence', false],
  ['with persistence (appendonly)', true],
])('a Redis restart %s', (_label, persistence) => {
  it('delivers every post that resolved after the restart (work queue: post 1, SHUTDOWN NOSAVE, post 2, restart, post 3)', async () => {
    const server = await new PrivateRedis([], { persistence }).start();
    const logger = recording();
    const transport = new RedisTransport({
      url: server.url,
      stream: 'restart',
      mode: 'work-queue',
      group: 'g',
      blockMs: 100,
      drainInitialIntervalMs: 20,
      nackRetryDelayMs: 20,
    });
    const bus = new EventBus({ transport, logger });
    try {
      await bus.connect();
      bus.start();
      const seen: number[] = [];
      bus.register(data => void seen.push(data as number), 'app');
      await bus.post('app', 'n', 1);
      await waitFor(() => seen.includes(1));
      await server.shutdownNosave();
      const two = bus.post('app', 'n', 2);
      await server.start();
      await two;
      await bus.post('app', 'n', 3);
      await waitFor(() => seen.includes(2) && seen.includes(3), { timeoutMs: 20_000 });
      const stats = bus.stats().transport;
      expect(stats['subscriber.lost']).toBe(0);
      if (!persistence) {
        expect(stats['subscriber.resets']).toBeGreaterThanOrEqual(1);
        const reset = logger.lines.find(line => line.includes('group g is missing'));
        expect(reset).toMatch(/at \d+-\d+, the last id this subscriber saw/);
      } else {
        expect(stats['subscriber.resets']).toBe(0);
      }
      // A failing XACK is told once per cause and interval, not once per retry.
      expect(logger.lines.filter(line => line.includes('XACK')).length).toBeLessThanOrEqual(2);
    } finally {
      await bus.close({ timeoutMs: 2000 });
      await server.stop();
    }
  });
});

describe('entries trimmed before the group read them', () => {
  it.each(['script', 'command'] as const)(
    'are counted once per group (two consumers, %s reads) with a WARN naming the range',
    async readMode => {
      const name = stream('trim');
      await admin.xgroup('CREATE', name, 'g', '0', 'MKSTREAM');
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) ids.push((await admin.xadd(name, '*', 'n', String(i)))!);
      await admin.xtrim(name, 'MAXLEN', 5);
      const logs = [recording(), recording()];
      const seen: string[] = [];
      const consumers = logs.map((logger, i) =>
        subscriber({
          stream: name,
          logger,
          readMode,
          group: { name: 'g', consumer: `c${i}` },
        }),
      );
      await Promise.all(
        consumers.map(s => s.subscribe(message => void seen.push(message.fields.n))),
      );
      await waitFor(() => seen.length === 5);
      const total = (): number => consumers.reduce((sum, s) => sum + s.stats().trimmedUnread, 0);
      await waitFor(() => total() === 15);
      expect(consumers.reduce((sum, s) => sum + s.stats().lost, 0)).toBe(15);
      const warn = logs.flatMap(l => l.lines).filter(line => line.includes('trimmed before'));
      expect(warn).toHaveLength(1);
      expect(warn[0]).toContain(`15 entries after 0-0 and before ${ids[15]}`);
      // Later reads find no new gap: still counted once.
      await admin.xadd(name, '*', 'n', 'later');
      await waitFor(() => seen.includes('later'));
      expect(total()).toBe(15);
    },
  );

  it('counts a gap opened while the group is reading (MAXLEN trimming past a slow reader)', async () => {
    const name = stream('trim-slow');
    const s = subscriber({
      stream: name,
      count: 10,
      maxInFlight: 1,
      group: { name: 'g', startId: '0' },
    });
    let release!: () => void;
    const gate = new Promise<void>(resolve => (release = resolve));
    const seen: string[] = [];
    await s.subscribe(async message => {
      seen.push(message.fields.n);
      await gate;
    });
    await admin.xadd(name, '*', 'n', 'first');
    await waitFor(() => seen.length === 1);
    // The reader holds `first` (maxInFlight 1): 200 more, trimmed exactly to the last 50.
    for (let i = 0; i < 200; i++) await admin.xadd(name, 'MAXLEN', '50', '*', 'n', String(i));
    release();
    await waitFor(() => seen.length === 51);
    await waitFor(() => s.stats().trimmedUnread === 150);
    expect(seen.slice(1, 3)).toEqual(['150', '151']);
  });
});

describe('undecodable entries', () => {
  it.each(['script', 'command'] as const)(
    'group mode (%s reads): a field that is not UTF-8 is dead-lettered at once with its original bytes, never handed to a handler',
    async readMode => {
      const name = stream('utf8');
      const s = subscriber({ stream: name, readMode, group: { name: 'g', maxDeliveries: 5 } });
      const seen: StreamMessage[] = [];
      await s.subscribe(message => void seen.push(message));
      const bad = Buffer.from([0x61, 0xff, 0xfe, 0x62]);
      const id = await admin.xadd(name, '*', 'payload', bad, 'n', '1');
      await admin.xadd(name, '*', 'payload', 'fine', 'n', '2');
      await waitFor(() => seen.length === 1);
      await waitFor(async () => (await admin.xlen(`${name}:dead`)) === 1);
      expect(seen[0].fields.n).toBe('2');
      const [[, fields]] = await admin.xrangeBuffer(`${name}:dead`, '-', '+');
      expect(fields[1]).toEqual(bad);
      const record = fieldsToRecord(fields.map(String));
      expect(record).toMatchObject({ n: '1', dead_id: id, dead_deliveries: '1' });
      expect(record.dead_reason).toBe(`undecodable: field '${bad.toString()}' is not valid UTF-8`);
      expect(s.stats()).toMatchObject({ undecodable: 1, nonUtf8: 1, failed: 0, deadLettered: 1 });
      await waitFor(async () => (await admin.xpending(name, 'g'))[0] === 0);
    },
  );

  it('fan-out mode: a field that is not UTF-8 is skipped and counted, the next entry is handled', async () => {
    const name = stream('utf8-fanout');
    const logger = recording();
    const s = subscriber({ stream: name, logger });
    const seen: string[] = [];
    await s.subscribe(message => void seen.push(message.fields.n));
    const id = await admin.xadd(name, '*', 'n', Buffer.from([0xc3, 0x28]));
    await admin.xadd(name, '*', 'n', 'ok');
    await waitFor(() => seen.includes('ok'));
    expect(seen).toEqual(['ok']);
    expect(s.stats()).toMatchObject({ undecodable: 1, nonUtf8: 1 });
    expect(logger.lines.some(line => line.includes(`entry ${id} skipped (undecodable)`))).toBe(
      true,
    );
  });

  it('an error marked undecodable (a codec failure) is dead-lettered at once, not retried as a handler failure', async () => {
    const name = stream('codec');
    let calls = 0;
    const s = subscriber({
      stream: name,
      group: { name: 'g', maxDeliveries: 5, nackRetryDelayMs: 5 },
    });
    await s.subscribe(() => {
      calls++;
      throw Object.assign(new SyntaxError('Unexpected token } in JSON'), { undecodable: true });
    });
    await admin.xadd(name, '*', 'payload', '{]');
    await waitFor(async () => (await admin.xlen(`${name}:dead`)) === 1);
    const [[, fields]] = await admin.xrange(`${name}:dead`, '-', '+');
    expect(fieldsToRecord(fields).dead_reason).toBe('undecodable: Unexpected token } in JSON');
    expect(calls).toBe(1);
    expect(s.stats()).toMatchObject({ undecodable: 1, failed: 0, nacked: 0 });
  });
});

describe('fan-out close({ timeoutMs })', () => {
  it('resolves on time while a handler hangs, as in group mode', async () => {
    const name = stream('hang');
    const logger = recording();
    const s = subscriber({ stream: name, logger });
    let started = false;
    await s.subscribe(() => {
      started = true;
      return new Promise(() => undefined); // never settles
    });
    await admin.xadd(name, '*', 'n', '1');
    await waitFor(() => started);
    await s.close({ timeoutMs: 300 });
    expect(s.stats().running).toBe(1);
    expect(logger.lines.some(line => line.includes('still running'))).toBe(true);
  });
});

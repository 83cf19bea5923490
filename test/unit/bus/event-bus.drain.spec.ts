import {
  BusDrainingError,
  EventBus,
  IdleTimeoutError,
  InvalidEventError,
  LocalTransport,
  TransportClosedError,
  silentLogger,
  type EventHandler,
  type HeraldLogger,
} from '../../../lib/index.js';
import { waitFor } from '../../helpers/wait-for.js';

function recordingLogger(): HeraldLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    log: m => void lines.push(`log ${m}`),
    warn: m => void lines.push(`warn ${m}`),
    error: m => void lines.push(`error ${m}`),
  };
}

function named(name: string, fn: EventHandler): EventHandler {
  return { [name]: (data: unknown, event: Parameters<EventHandler>[1]) => fn(data, event) }[name];
}

describe('EventBus: awaiting handlers, whenIdle and the drain', () => {
  const buses: EventBus[] = [];
  const make = (logger: HeraldLogger = silentLogger): EventBus => {
    const bus = new EventBus({ transport: new LocalTransport(), logger });
    buses.push(bus);
    return bus;
  };
  afterEach(async () => {
    await Promise.all(buses.splice(0).map(bus => bus.close({ timeoutMs: 200 })));
  });

  it('postLocal with wait resolves with every outcome, in registration order', async () => {
    const bus = make();
    bus.start();
    bus.register(
      named('Slow.first', async () => {
        await new Promise(resolve => setImmediate(resolve));
        return 'one';
      }),
      'o',
    );
    bus.register(
      named('Failing.second', () => {
        throw new Error('two');
      }),
      'o',
    );
    bus.register(
      named('Sync.third', data => (data as number) * 3),
      'o',
    );
    const outcomes = await bus.postLocal('o', 'x', 2, { wait: true });
    expect(outcomes).toEqual([
      { handler: 'Slow.first', status: 'fulfilled', value: 'one' },
      { handler: 'Failing.second', status: 'rejected', reason: new Error('two') },
      { handler: 'Sync.third', status: 'fulfilled', value: 6 },
    ]);
    await expect(bus.postLocal('none', 'x', 1, { wait: true })).resolves.toEqual([]);
  });

  it('postLocal with rejectOnError rejects with an AggregateError naming the failed handlers', async () => {
    const bus = make();
    bus.start();
    bus.register(
      named('A.ok', () => 1),
      'o',
    );
    bus.register(
      named('B.bad', () => Promise.reject(new Error('boom'))),
      'o',
    );
    const error = (await bus
      .postLocal('o', 'x', null, { wait: true, rejectOnError: true })
      .catch((e: unknown) => e)) as AggregateError;
    expect(error).toBeInstanceOf(AggregateError);
    expect(error.errors).toEqual([new Error('boom')]);
    expect(error.message).toBe('1 handler(s) failed on o/x: B.bad');
    await expect(
      bus.postLocal('o', 'y', null, { wait: true, rejectOnError: true }),
    ).rejects.toThrow(AggregateError);
  });

  it('post refuses wait with a clear error: its handlers may run elsewhere', async () => {
    const bus = make();
    await expect(bus.post('o', 'x', 1, { wait: true } as never)).rejects.toThrow(InvalidEventError);
    await expect(bus.post('o', 'x', 1, { wait: true } as never)).rejects.toThrow(/postLocal/);
  });

  it('whenIdle resolves once every post so far was handled, and rejects naming what is busy after its timeout', async () => {
    const bus = make();
    bus.start();
    let handled = 0;
    bus.register(async () => {
      await new Promise(resolve => setImmediate(resolve));
      handled++;
    }, 'w');
    for (let i = 0; i < 5; i++) void bus.post('w', 'x', i);
    bus.postLocal('w', 'y');
    await bus.whenIdle();
    expect(handled).toBe(6);
    let release!: () => void;
    bus.register(
      named('Stuck.handle', () => new Promise<void>(r => (release = r))),
      'stuck',
    );
    bus.postLocal('stuck', 'x');
    const error = (await bus.whenIdle({ timeoutMs: 10 }).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(IdleTimeoutError);
    expect(error.message).toContain('Stuck.handle');
    release();
    await bus.whenIdle();
  });

  it('once the drain began, post and postLocal are refused with BusDrainingError; what was accepted before runs', async () => {
    const bus = make();
    bus.start();
    const seen: unknown[] = [];
    bus.register(data => void seen.push(data), 'd');
    let open!: () => void;
    const gate = new Promise<void>(r => (open = r));
    bus.register(() => gate, 'd', 'slow');
    bus.postLocal('d', 'slow');
    bus.postLocal('d', 'queued', 'before');
    const accepted = bus.post('d', 'queued', 'posted before');
    bus.beginDrain();
    expect(bus.state).toBe('draining');
    await expect(bus.post('d', 'x', 'after')).rejects.toThrow(BusDrainingError);
    await expect(bus.post('d', 'x', 'after')).rejects.toThrow(TransportClosedError);
    expect(() => bus.postLocal('d', 'x', 'after')).toThrow(/draining for shutdown: d\/x refused/);
    await expect(bus.postLocal('d', 'x', 'after', { wait: true })).rejects.toThrow(
      BusDrainingError,
    );
    await accepted;
    open();
    await bus.drain(5000);
    expect(seen).toEqual([undefined, 'before', 'posted before']);
    expect(bus.stats().refusedDraining).toBe(4);
  });

  it('close() waits for a running handler, even one past handlerTimeoutMs, until it really settles', async () => {
    const bus = new EventBus({
      transport: new LocalTransport(),
      logger: silentLogger,
      handlerTimeoutMs: 5,
    });
    bus.start();
    let release!: () => void;
    let finished = false;
    bus.register(async () => {
      await new Promise<void>(r => (release = r));
      finished = true;
    }, 'c');
    bus.postLocal('c', 'x');
    await waitFor(() => bus.stats().timeouts === 1);
    let closed = false;
    const closing = bus.close({ timeoutMs: 60_000 }).then(() => (closed = true));
    await new Promise(resolve => setImmediate(resolve));
    expect(closed).toBe(false);
    release();
    await closing;
    expect(finished).toBe(true);
  });

  it('when the shutdown timeout fires, the warning names each handler still running', async () => {
    const logger = recordingLogger();
    const bus = make(logger);
    bus.start();
    bus.register(
      named('Mailer.send', () => new Promise(() => undefined)),
      'm',
    );
    bus.register(
      named('Audit.write', () => new Promise(() => undefined)),
      'm',
    );
    bus.postLocal('m', 'x');
    bus.postLocal('m', 'x');
    await bus.close({ timeoutMs: 10 });
    const warning = logger.lines.find(line =>
      line.startsWith('warn bus bus-shutdown-timeout: shutdown timeout'),
    )!;
    expect(warning).toContain('handlers still running: Mailer.send, Audit.write');
    expect(bus.runningHandlers()).toEqual(['Mailer.send', 'Audit.write']);
  });
});

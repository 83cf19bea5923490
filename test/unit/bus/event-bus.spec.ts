import { BehaviorSubject } from 'rxjs';
import {
  EventBus,
  HandlerTimeoutError,
  InvalidOptionsError,
  LocalTransport,
  PayloadTooLargeError,
  QueueFullError,
  TransportClosedError,
  silentLogger,
  type Envelope,
  type HeraldLogger,
  type PublishResult,
  type Settlement,
  type Transport,
  type TransportContext,
} from '../../../lib/index.js';
import { waitFor } from '../../helpers/wait-for.js';

/** A logger that keeps what it was told, to prove what is (and is not) logged. */
function recordingLogger(): HeraldLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    log: m => void lines.push(`log ${m}`),
    warn: m => void lines.push(`warn ${m}`),
    error: m => void lines.push(`error ${m}`),
    debug: m => void lines.push(`debug ${m}`),
  };
}

/**
 * A real, minimal transport of our own for the cases the local one cannot
 * show: it holds publishes until told, refuses chosen envelopes, and hands
 * raw (possibly malformed) envelopes to the bus.
 */
class ControlledTransport implements Transport {
  readonly name = 'controlled';
  readonly features = {
    reach: 'process' as const,
    guarantee: 'once' as const,
    ordering: 'global' as const,
    uniqueScope: 'process' as const,
    redelivers: false,
    loopback: false,
    persistent: false,
    maxPayloadBytes: 64,
  };
  readonly status$ = new BehaviorSubject({ state: 'connected' as const });
  context?: TransportContext;
  published: Envelope[] = [];
  settlements: Settlement[] = [];
  intakeStopped = false;
  refuse = new Set<string>();
  closed = false;

  async connect(context: TransportContext): Promise<void> {
    this.context = context;
  }
  async publish(batch: readonly Envelope[]): Promise<readonly PublishResult[]> {
    this.published.push(...batch);
    return batch.map(e =>
      this.refuse.has(e.event)
        ? { ok: false as const, error: new Error(`refused ${e.event}`) }
        : { ok: true as const, ref: `r-${e.id}` },
    );
  }
  inject(envelope: Partial<Envelope>): void {
    this.context!.deliver({
      envelope: {
        id: 'x',
        source: 's',
        event: 'e',
        payload: '',
        origin: 'elsewhere',
        occurredAt: new Date(0).toISOString(),
        ...envelope,
      },
      attempt: 1,
      settle: s => void this.settlements.push(s),
    });
  }
  async stopIntake(): Promise<void> {
    this.intakeStopped = true;
  }
  stats(): Record<string, number> {
    return { published: this.published.length };
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

describe('EventBus', () => {
  const buses: EventBus[] = [];
  const make = (options: Partial<ConstructorParameters<typeof EventBus>[0]> = {}): EventBus => {
    const bus = new EventBus({ transport: new LocalTransport(), logger: silentLogger, ...options });
    buses.push(bus);
    return bus;
  };
  afterEach(async () => {
    await Promise.all(buses.splice(0).map(bus => bus.close({ timeoutMs: 1000 })));
  });

  it('validates its options', () => {
    expect(() => new EventBus({ transport: new LocalTransport(), concurrency: 0 })).toThrow(
      InvalidOptionsError,
    );
    expect(() => new EventBus({ transport: new LocalTransport(), concurrency: 1.5 })).toThrow(
      InvalidOptionsError,
    );
    expect(() => new EventBus({ transport: new LocalTransport(), maxPending: 0 })).toThrow(
      InvalidOptionsError,
    );
    expect(() => new EventBus({ transport: new LocalTransport(), handlerTimeoutMs: -1 })).toThrow(
      InvalidOptionsError,
    );
  });

  it('buffers events posted before start and runs them in order once started', async () => {
    const bus = make();
    const seen: number[] = [];
    bus.register(data => void seen.push(data as number), 'early');
    bus.postLocal('early', 'x', 1);
    await bus.post('early', 'x', 2);
    bus.postLocal('early', 'x', 3);
    expect(seen).toEqual([]);
    expect(bus.stats().queued).toBe(3);
    bus.start();
    await waitFor(() => seen.length === 3);
    expect(seen).toEqual([1, 2, 3]);
  });

  it('connects lazily on the first post and becomes ready once started', async () => {
    const bus = make();
    let ready = false;
    void bus.waitUntilReady().then(() => (ready = true));
    await bus.post('a', 'b');
    expect(ready).toBe(false);
    bus.start();
    await waitFor(() => ready);
  });

  it('hands postLocal handlers the very object, and post handlers a decoded copy', async () => {
    const bus = make();
    bus.start();
    const got: unknown[] = [];
    bus.register(data => void got.push(data), 'obj');
    const object = { n: 1 };
    bus.postLocal('obj', 'x', object);
    await bus.post('obj', 'x', object);
    await waitFor(() => got.length === 2);
    expect(got[0]).toBe(object);
    expect(got[1]).not.toBe(object);
    expect(got[1]).toEqual(object);
  });

  it('refuses posts beyond maxPending with QueueFullError, losing none it accepted', async () => {
    const transport = new ControlledTransport();
    const bus = make({ transport, maxPending: 3 });
    const accepted = [bus.post('q', 'a'), bus.post('q', 'b'), bus.post('q', 'c')];
    await expect(bus.post('q', 'd')).rejects.toThrow(QueueFullError);
    await Promise.all(accepted);
    expect(transport.published.map(e => e.event)).toEqual(['a', 'b', 'c']);
  });

  it('refuses postLocal beyond maxPending with QueueFullError', () => {
    const bus = make({ maxPending: 2 });
    bus.postLocal('q', 'a');
    bus.postLocal('q', 'b');
    expect(() => bus.postLocal('q', 'c')).toThrow(QueueFullError);
    expect(bus.stats().queued).toBe(2);
  });

  it('drops (counts, logs and nacks, never silently) deliveries beyond maxPending before start', async () => {
    const logger = recordingLogger();
    const transport = new ControlledTransport();
    const bus = make({ maxPending: 2, logger, transport });
    await bus.connect();
    transport.inject({ event: 'a' });
    transport.inject({ event: 'b' });
    transport.inject({ id: 'c', event: 'c' });
    expect(bus.stats().dropped).toBe(1);
    expect(transport.settlements).toEqual([{ outcome: 'nack', error: expect.any(QueueFullError) }]);
    expect(
      logger.lines.some(
        l => l.includes('bus-event-dropped: dropped event s/c') && l.includes('id=c'),
      ),
    ).toBe(true);
  });

  it('rejects exactly the envelopes the transport refused and resolves the rest with its ref', async () => {
    const transport = new ControlledTransport();
    transport.refuse.add('bad');
    const bus = make({ transport });
    const [good, bad] = [bus.post('t', 'good'), bus.post('t', 'bad')];
    await expect(bad).rejects.toThrow('refused bad');
    const receipt = await good;
    expect(receipt.ref).toBe(`r-${receipt.id}`);
    expect(bus.stats().publishFailed).toBe(1);
  });

  it('checks the payload limit the transport declares', async () => {
    const bus = make({ transport: new ControlledTransport() });
    await expect(bus.post('t', 'big', 'x'.repeat(100))).rejects.toThrow(PayloadTooLargeError);
    await expect(bus.post('t', 'big', 'é'.repeat(40))).rejects.toThrow(PayloadTooLargeError);
    await expect(bus.post('t', 'small', 'x'.repeat(10))).resolves.toHaveProperty('id');
  });

  it('counts, logs and nacks an envelope it cannot decode, without its data, and keeps going', async () => {
    const transport = new ControlledTransport();
    const logger = recordingLogger();
    const bus = make({ transport, logger });
    await bus.connect();
    bus.start();
    const got: unknown[] = [];
    bus.register(data => void got.push(data), 's');
    transport.inject({ payload: '{"secret": 42' });
    transport.inject({ payload: '"fine"' });
    await waitFor(() => got.length === 1);
    expect(got).toEqual(['fine']);
    expect(bus.stats().decodeErrors).toBe(1);
    expect(transport.settlements.map(s => s.outcome)).toEqual(['nack', 'ack']);
    expect(logger.lines.join('\n')).toContain('cannot decode event s/e');
    expect(logger.lines.join('\n')).not.toContain('secret');
  });

  it('logs handler failures with source, event, id and origin but never the data', async () => {
    const logger = recordingLogger();
    const bus = make({ logger });
    bus.start();
    bus.register(function failing() {
      throw new Error('kaput');
    }, 'log');
    const { id } = await bus.post('log', 'x', { password: 'hunter2' });
    await waitFor(() => bus.stats().failed === 1);
    const line = logger.lines.find(l =>
      l.startsWith('error bus bus-handler-failed: handler failing'),
    )!;
    expect(line).toContain('log/x');
    expect(line).toContain(id);
    expect(line).toContain(bus.origin);
    expect(logger.lines.join('\n')).not.toContain('hunter2');
  });

  it('survives an onHandlerError callback that throws', async () => {
    const logger = recordingLogger();
    const bus = make({
      logger,
      onHandlerError: () => {
        throw new Error('callback broke');
      },
    });
    bus.start();
    let after = 0;
    bus.register(() => {
      throw new Error('first');
    }, 'cb');
    bus.register(() => void after++, 'cb');
    await bus.post('cb', 'x');
    await waitFor(() => after === 1);
    expect(logger.lines.some(l => l.includes('onHandlerError threw: callback broke'))).toBe(true);
  });

  it('counts a handler that outlives handlerTimeoutMs as failed and settles the event', async () => {
    const errors: unknown[] = [];
    const transport = new ControlledTransport();
    const bus = make({ transport, handlerTimeoutMs: 20, onHandlerError: e => void errors.push(e) });
    await bus.connect();
    bus.start();
    bus.register(() => new Promise(() => undefined), 's');
    transport.inject({ payload: '1' });
    await waitFor(() => transport.settlements.length === 1);
    expect(transport.settlements[0].outcome).toBe('nack');
    expect(errors[0]).toBeInstanceOf(HandlerTimeoutError);
    expect(bus.stats().timeouts).toBe(1);
  });

  it('runs at most `concurrency` events at once, in arrival order', async () => {
    const bus = make({ concurrency: 2 });
    bus.start();
    const gates: (() => void)[] = [];
    const started: number[] = [];
    bus.register(data => {
      started.push(data as number);
      return new Promise<void>(resolve => gates.push(resolve));
    }, 'c');
    for (let i = 0; i < 5; i++) bus.postLocal('c', 'x', i);
    await waitFor(() => started.length === 2);
    expect(bus.stats().inFlight).toBe(2);
    expect(bus.stats().queued).toBe(3);
    gates.shift()!();
    await waitFor(() => started.length === 3);
    expect(started).toEqual([0, 1, 2]);
    while (started.length < 5 || gates.length) {
      gates.shift()?.();
      await new Promise(resolve => setImmediate(resolve));
    }
    expect(started).toEqual([0, 1, 2, 3, 4]);
  });

  it('with concurrency 1, starts the next event only after every handler of the previous settled', async () => {
    const bus = make();
    bus.start();
    const log: string[] = [];
    let release!: () => void;
    bus.register(async data => {
      log.push(`start ${data}`);
      if (data === 1) await new Promise<void>(resolve => (release = resolve));
      log.push(`end ${data}`);
    }, 'seq');
    bus.postLocal('seq', 'x', 1);
    bus.postLocal('seq', 'x', 2);
    await waitFor(() => log.length === 1);
    expect(log).toEqual(['start 1']);
    release();
    await waitFor(() => log.length === 4);
    expect(log).toEqual(['start 1', 'end 1', 'start 2', 'end 2']);
  });

  it('stops intake, drains, then closes the transport; posts after close reject', async () => {
    const transport = new ControlledTransport();
    const bus = make({ transport });
    await bus.connect();
    bus.start();
    let finished = false;
    bus.register(async () => {
      await new Promise(resolve => setTimeout(resolve, 30));
      finished = true;
    }, 's');
    transport.inject({ payload: '1' });
    await bus.close({ timeoutMs: 5000 });
    expect(transport.intakeStopped).toBe(true);
    expect(finished).toBe(true);
    expect(transport.closed).toBe(true);
    expect(transport.settlements).toEqual([{ outcome: 'ack' }]);
    await expect(bus.post('s', 'e')).rejects.toThrow(TransportClosedError);
    await expect(bus.connect()).rejects.toThrow(TransportClosedError);
  });

  it('nacks what is still queued when the shutdown timeout is reached', async () => {
    const transport = new ControlledTransport();
    const logger = recordingLogger();
    const bus = make({ transport, logger });
    await bus.connect();
    bus.start();
    bus.register(() => new Promise(() => undefined), 's');
    transport.inject({ id: 'a', payload: '1' });
    transport.inject({ id: 'b', payload: '2' });
    await bus.close({ timeoutMs: 20 });
    expect(transport.settlements).toEqual([
      { outcome: 'nack', error: expect.any(TransportClosedError) },
    ]);
    expect(logger.lines.some(l => l.includes('shutdown timeout of 20 ms'))).toBe(true);
    expect(
      logger.lines.some(
        l => l.includes('bus-event-dropped: dropped event s/e') && l.includes('id=b'),
      ),
    ).toBe(true);
  });

  it('sends posts accepted before close', async () => {
    const transport = new ControlledTransport();
    const bus = make({ transport });
    const pending = bus.post('s', 'accepted');
    await bus.close();
    await expect(pending).resolves.toHaveProperty('id');
    expect(transport.published.map(e => e.event)).toEqual(['accepted']);
  });

  it('keeps two buses apart', async () => {
    const [a, b] = [make(), make()];
    a.start();
    b.start();
    const got = { a: 0, b: 0 };
    a.register(() => void got.a++);
    b.register(() => void got.b++);
    await a.post('x', 'y');
    await waitFor(() => got.a === 1);
    await b.post('x', 'y');
    await waitFor(() => got.b === 1);
    expect(got).toEqual({ a: 1, b: 1 });
  });

  it('validates handlers and patterns', () => {
    const bus = make({ transport: new LocalTransport() });
    expect(() => bus.register(null as never)).toThrow(TypeError);
    expect(() => bus.register(() => 1, '')).toThrow(TypeError);
    expect(() => bus.register(() => 1, 's', '')).toThrow(TypeError);
    expect(() => bus.unregister('x' as never, 's')).toThrow(TypeError);
    expect(() => bus.postLocal('', 'x')).toThrow('source must be a non-empty string');
  });
});

import { Dispatcher, type Item } from '../../../lib/bus/event-bus.dispatcher.js';
import { EnvelopeFactory } from '../../../lib/bus/event-bus.envelope.js';
import { busCounters } from '../../../lib/bus/event-bus.stats.js';
import {
  HandlerTimeoutError,
  QueueFullError,
  jsonCodec,
  silentLogger,
  systemClock,
  type Delivery,
  type EventHandler,
  type Settlement,
} from '../../../lib/index.js';
import type { HandlerOutcome } from '../../../lib/bus/event-bus.options.js';
import type { HandlerEntry } from '../../../lib/bus/event-bus.registry.js';
import { waitFor } from '../../helpers/wait-for.js';

describe('Dispatcher', () => {
  const factory = new EnvelopeFactory(jsonCodec, 'o', systemClock, undefined);
  const make = (
    handlers: EventHandler[],
    options: { concurrency?: number; maxPending?: number; handlerTimeoutMs?: number } = {},
  ) => {
    const counters = busCounters();
    const errors: unknown[] = [];
    // Entries as the registry makes them, in registration order.
    const entries: HandlerEntry[] = handlers.map((handler, seq) => ({
      handler,
      receiver: undefined,
      key: undefined,
      name: undefined,
      seq,
      timeoutMs: undefined,
      source: '*',
      event: '*',
      more: undefined,
    }));
    // One handler is found as itself, as the registry finds a lone exact one (the one-handler path).
    const found = entries.length === 1 ? entries[0] : entries;
    const dispatcher = new Dispatcher({
      handlers: { match: () => found },
      factory,
      counters,
      logger: silentLogger,
      concurrency: options.concurrency ?? 1,
      maxPending: options.maxPending ?? 100,
      handlerTimeoutMs: options.handlerTimeoutMs,
      onHandlerError: error => void errors.push(error),
      transportName: 't',
      settled: () => undefined,
    });
    return { dispatcher, counters, errors };
  };
  const delivery = (data: unknown, settlements: Settlement[]): Item => ({
    envelope: factory.envelope('s', 'e', data),
    attempt: 1,
    settle: s => void settlements.push(s),
  });

  it('holds items until start, then runs them in arrival order', () => {
    const seen: unknown[] = [];
    const { dispatcher } = make([data => void seen.push(data)]);
    dispatcher.enqueue({ local: factory.local('s', 'e', 1) });
    dispatcher.enqueue({ local: factory.local('s', 'e', 2) });
    expect(seen).toEqual([]);
    expect(dispatcher.isIdle()).toBe(true);
    dispatcher.start();
    expect(seen).toEqual([1, 2]);
  });

  it('acks when every handler succeeded, nacks when one failed, and reports outcomes in registration order', async () => {
    const settlements: Settlement[] = [];
    const failing: EventHandler = async () => {
      throw new Error('no');
    };
    Object.defineProperty(failing, 'name', { value: 'Billing.charge' });
    const { dispatcher, counters, errors } = make([() => 'sync', failing, async () => 'async']);
    dispatcher.start();
    dispatcher.enqueue(delivery(1, settlements));
    let outcomes: HandlerOutcome[] | undefined;
    dispatcher.enqueue({ local: factory.local('s', 'e', 2), report: o => (outcomes = o) });
    await waitFor(() => outcomes !== undefined);
    expect(settlements.map(s => s.outcome)).toEqual(['nack']);
    expect(outcomes).toEqual([
      { handler: 'anonymous', status: 'fulfilled', value: 'sync' },
      { handler: 'Billing.charge', status: 'rejected', reason: expect.any(Error) },
      { handler: 'anonymous', status: 'fulfilled', value: 'async' },
    ]);
    expect(counters).toMatchObject({ failed: 2, handled: 4, nacked: 1 });
    expect(errors).toHaveLength(2);
  });

  it('runs one handler found alone: a throw or a rejection nacks, counts and reaches onHandlerError; a value acks', async () => {
    const settlements: Settlement[] = [];
    let mode: 'value' | 'throw' | 'reject' = 'value';
    const lone: EventHandler = () => {
      if (mode === 'throw') throw new Error('sync');
      if (mode === 'reject') return Promise.reject(new Error('async'));
      return 'ok';
    };
    const { dispatcher, counters, errors } = make([lone]);
    dispatcher.start();
    dispatcher.enqueue(delivery(1, settlements));
    mode = 'throw';
    dispatcher.enqueue(delivery(2, settlements));
    mode = 'reject';
    dispatcher.enqueue(delivery(3, settlements));
    await waitFor(() => settlements.length === 3);
    expect(settlements.map(s => s.outcome)).toEqual(['ack', 'nack', 'nack']);
    expect(errors.map(e => (e as Error).message)).toEqual(['sync', 'async']);
    expect(counters).toMatchObject({ handled: 1, failed: 2, acked: 1, nacked: 2 });
    expect(dispatcher.isIdle()).toBe(true);
  });

  it("runs a lone handler of an un-awaited postLocal (runLocal's short path) exactly as the general path does", async () => {
    // The same events through runLocal (the short path) and through
    // enqueue (the runner's execute -> handle): same calls in the same
    // order, same counts, same errors, idle at the end.
    const scenario = async (path: 'short' | 'general') => {
      const calls: string[] = [];
      let release!: () => void;
      const lone: EventHandler = (data: unknown) => {
        calls.push(String(data));
        if (data === 'throw') throw new Error('sync');
        if (data === 'reject') return Promise.reject(new Error('async'));
        if (data === 'hold') return new Promise<void>(resolve => (release = resolve));
        if (data === 'nest') post('nested');
        return 'ok';
      };
      const { dispatcher, counters, errors } = make([lone]);
      dispatcher.start();
      const post = (data: string): void =>
        path === 'short'
          ? dispatcher.runLocal(factory.local('s', 'e', data))
          : dispatcher.enqueue(factory.local('s', 'e', data));
      post('value');
      // A post from inside a handler runs after it, not inside it.
      post('nest');
      calls.push('after nest');
      post('throw');
      post('reject');
      post('hold');
      // Concurrency 1: held by the pending handler, this one waits its turn.
      post('queued');
      expect(dispatcher.isIdle()).toBe(false);
      await waitFor(() => release !== undefined);
      release();
      await waitFor(() => dispatcher.isIdle());
      return { calls, counters: { ...counters }, errors: errors.map(e => (e as Error).message) };
    };
    const short = await scenario('short');
    const general = await scenario('general');
    // runLocal counts its events as posted (the bus's postLocal); enqueue leaves that to its caller.
    expect(short.counters.postedLocal).toBe(7);
    expect(general.counters.postedLocal).toBe(0);
    expect({ ...short, counters: { ...short.counters, postedLocal: 0 } }).toEqual(general);
    expect(short.calls).toEqual([
      'value',
      'nest',
      'nested',
      'after nest',
      'throw',
      'reject',
      'hold',
      'queued',
    ]);
    expect(short.errors).toEqual(['sync', 'async']);
    expect(short.counters).toMatchObject({ handled: 5, failed: 2 });
  });

  it("runs a transport's deliveries through deliver (the runner's claim and release inline) exactly as through enqueue", async () => {
    // The same deliveries through deliver (the bus's receive) and through
    // enqueue (the runner's submit -> execute -> release): same calls in the
    // same order, same settlements, counts and errors, the same idle
    // callbacks, idle at the end; held before start in both.
    const scenario = async (path: 'short' | 'general') => {
      const calls: string[] = [];
      const settlements: string[] = [];
      let release!: () => void;
      let turns = 0;
      const lone: EventHandler = (data: unknown) => {
        calls.push(String(data));
        if (data === 'throw') throw new Error('sync');
        if (data === 'reject') return Promise.reject(new Error('async'));
        if (data === 'hold') return new Promise<void>(resolve => (release = resolve));
        if (data === 'nest') send('nested');
        return 'ok';
      };
      const counters = busCounters();
      const errors: unknown[] = [];
      const entry: HandlerEntry = {
        handler: lone,
        receiver: undefined,
        key: undefined,
        name: undefined,
        seq: 0,
        timeoutMs: undefined,
        source: '*',
        event: '*',
        more: undefined,
      };
      const dispatcher = new Dispatcher({
        handlers: { match: (_source, event) => (event === 'none' ? [] : entry) },
        factory,
        counters,
        logger: silentLogger,
        concurrency: 1,
        maxPending: 100,
        onHandlerError: error => void errors.push(error),
        transportName: 't',
        settled: () => void turns++,
      });
      const send = (data: string, event = 'e'): void => {
        const item = {
          envelope: factory.envelope('s', event, data),
          attempt: 1,
          settle: (s: Settlement) => void settlements.push(`${data}:${s.outcome}`),
        };
        if (path === 'short') dispatcher.deliver(item);
        else dispatcher.enqueue(item);
      };
      send('early');
      expect(calls).toEqual([]);
      dispatcher.start();
      send('value');
      // A delivery from inside a handler runs after it, not inside it.
      send('nest');
      calls.push('after nest');
      send('unmatched', 'none');
      send('throw');
      send('reject');
      send('hold');
      // Concurrency 1: held by the pending handler, this one waits its turn.
      send('queued');
      expect(dispatcher.isIdle()).toBe(false);
      await waitFor(() => release !== undefined);
      release();
      await waitFor(() => dispatcher.isIdle());
      return {
        calls,
        settlements,
        turns,
        counters: { ...counters },
        errors: errors.map(e => (e as Error).message),
      };
    };
    const short = await scenario('short');
    const general = await scenario('general');
    expect(short).toEqual(general);
    expect(short.calls).toEqual([
      'early',
      'value',
      'nest',
      'nested',
      'after nest',
      'throw',
      'reject',
      'hold',
      'queued',
    ]);
    expect(short.settlements).toEqual([
      'early:ack',
      'value:ack',
      'nest:ack',
      'nested:ack',
      'unmatched:ack',
      'throw:nack',
      'reject:nack',
      'hold:ack',
      'queued:ack',
    ]);
    expect(short.errors).toEqual(['sync', 'async']);
    expect(short.counters).toMatchObject({ handled: 6, failed: 2, unhandled: 1 });
  });

  it('gives the slot back when running a delivery throws (a logger that throws), and goes on', () => {
    const counters = busCounters();
    let throwing = true;
    const dispatcher = new Dispatcher({
      handlers: {
        match: () => ({
          handler: () => {
            throw new Error('handler');
          },
          receiver: undefined,
          key: undefined,
          name: undefined,
          seq: 0,
          timeoutMs: undefined,
          source: '*',
          event: '*',
          more: undefined,
        }),
      },
      factory,
      counters,
      logger: {
        ...silentLogger,
        error: () => {
          if (throwing) throw new Error('logger');
        },
      },
      concurrency: 1,
      maxPending: 100,
      transportName: 't',
      settled: () => undefined,
    });
    dispatcher.start();
    const settlements: Settlement[] = [];
    const item = delivery(1, settlements) as Delivery;
    expect(() => dispatcher.deliver(item)).toThrow('logger');
    expect(dispatcher.gauges()).toEqual({ queued: 0, inFlight: 0, running: 0 });
    throwing = false;
    dispatcher.deliver(item);
    expect(counters.failed).toBe(2);
    expect(settlements.map(s => s.outcome)).toEqual(['nack']);
    expect(dispatcher.isIdle()).toBe(true);
  });

  it('names the handler calls still running, a timed-out one included, until they really settle', async () => {
    let release!: () => void;
    const slow: EventHandler = () => new Promise<void>(resolve => (release = resolve));
    Object.defineProperty(slow, 'name', { value: 'Slow.handle' });
    const { dispatcher, errors } = make([slow], { handlerTimeoutMs: 5 });
    dispatcher.start();
    dispatcher.enqueue({ local: factory.local('s', 'e', 1) });
    expect(dispatcher.runningHandlers()).toEqual(['Slow.handle']);
    await waitFor(() => errors.length === 1);
    expect(errors[0]).toBeInstanceOf(HandlerTimeoutError);
    expect(dispatcher.gauges()).toEqual({ queued: 0, inFlight: 0, running: 1 });
    expect(dispatcher.isIdle()).toBe(false);
    release();
    await waitFor(() => dispatcher.isIdle());
    expect(dispatcher.runningHandlers()).toEqual([]);
  });

  it('keeps at most concurrency events in flight', async () => {
    const gates: (() => void)[] = [];
    const { dispatcher } = make([() => new Promise<void>(resolve => gates.push(resolve))], {
      concurrency: 2,
    });
    dispatcher.start();
    for (let i = 0; i < 4; i++) dispatcher.enqueue({ local: factory.local('s', 'e', i) });
    expect(dispatcher.gauges()).toMatchObject({ inFlight: 2, queued: 2 });
    gates.shift()!();
    await waitFor(() => dispatcher.gauges().queued === 1);
  });

  it('drops beyond maxPending (counted, nacked) and refuses local events with QueueFullError', () => {
    const settlements: Settlement[] = [];
    const { dispatcher, counters } = make([], { maxPending: 1 });
    dispatcher.enqueue({ local: factory.local('s', 'e', 1) });
    expect(() => dispatcher.assertRoom()).toThrow(QueueFullError);
    dispatcher.enqueue(delivery(2, settlements));
    expect(counters.dropped).toBe(1);
    expect(settlements).toEqual([{ outcome: 'nack', error: expect.any(QueueFullError) }]);
  });

  it('nacks and counts an envelope it cannot decode', () => {
    const settlements: Settlement[] = [];
    const { dispatcher, counters } = make([() => undefined]);
    dispatcher.start();
    const item = delivery(1, settlements) as { envelope: object };
    dispatcher.enqueue({
      ...(item as Item & { envelope: object }),
      envelope: { ...item.envelope, payload: '{' },
    } as Item);
    expect(counters.decodeErrors).toBe(1);
    expect(settlements.map(s => s.outcome)).toEqual(['nack']);
  });

  it('logs a transport whose settle throws (bus-settle-failed) and keeps dispatching', () => {
    const lines: string[] = [];
    const calls: unknown[] = [];
    const counters = busCounters();
    const entry: HandlerEntry = {
      handler: (data: unknown) => void calls.push(data),
      receiver: undefined,
      key: undefined,
      name: undefined,
      seq: 0,
      timeoutMs: undefined,
      source: '*',
      event: '*',
      more: undefined,
    };
    const dispatcher = new Dispatcher({
      handlers: { match: () => entry },
      factory,
      counters,
      logger: { ...silentLogger, error: message => void lines.push(message) },
      concurrency: 1,
      maxPending: 100,
      handlerTimeoutMs: undefined,
      onHandlerError: () => undefined,
      transportName: 't',
      settled: () => undefined,
    });
    dispatcher.start();
    const throwing: Delivery = {
      envelope: factory.envelope('s', 'e', 1),
      attempt: 1,
      settle: () => {
        throw new Error('settle broke');
      },
    };
    dispatcher.deliver(throwing);
    const settlements: Settlement[] = [];
    dispatcher.deliver(delivery(2, settlements) as Delivery);
    expect(calls).toEqual([1, 2]);
    expect(counters.handled).toBe(2);
    expect(settlements).toEqual([{ outcome: 'ack' }]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('bus-settle-failed');
    expect(lines[0]).toContain('transport t failed to settle: settle broke');
  });

  it('acks a delivery no handler matches without decoding it (counted unhandled, not a decode error)', () => {
    const settlements: Settlement[] = [];
    const { dispatcher, counters } = make([]);
    dispatcher.start();
    const item = delivery(1, settlements) as Item & { envelope: object };
    dispatcher.enqueue({ ...item, envelope: { ...item.envelope, payload: '{' } } as Item);
    expect(counters.unhandled).toBe(1);
    expect(counters.decodeErrors).toBe(0);
    expect(settlements).toEqual([{ outcome: 'ack' }]);
  });
});

import { EventEmitter } from 'node:events';
import { IllegalStateTransitionError } from '../../../../lib/common/state-machine.js';
import {
  CauseRecorder,
  connectWithin,
  heraldLifecycle,
  heraldStateMachine,
} from '../../../../lib/microservices/base/herald.state.js';
import { memoryLogger } from '../../../helpers/memory-logger.js';
import { ConnectTimeoutError } from '../../../../lib/microservices/microservice.errors.js';

const silent = { log: () => undefined, warn: () => undefined, error: () => undefined };

describe('heraldStateMachine', () => {
  it('starts idle, replays the current state with its reason', () => {
    const machine = heraldStateMachine('TestClient', silent);
    const seen: unknown[] = [];
    machine.setState('connecting');
    machine.setState('connecting', 'connect ECONNREFUSED');
    machine.status$.subscribe(change => seen.push(change));
    expect(seen).toEqual([{ state: 'connecting', reason: 'connect ECONNREFUSED' }]);
  });

  it('refuses an illegal transition: disconnected is final', () => {
    const machine = heraldStateMachine('TestServer', silent);
    machine.setState('disconnected');
    expect(() => machine.setState('connected')).toThrow(IllegalStateTransitionError);
    expect(() => machine.setState('connecting')).toThrow(/TestServer: illegal state transition/);
  });

  it('goes connecting -> connected -> reconnecting -> connected -> disconnected', () => {
    const machine = heraldStateMachine('TestServer', silent);
    const states: string[] = [];
    machine.status$.subscribe(change => states.push(change.state));
    for (const next of [
      'connecting',
      'connected',
      'reconnecting',
      'connected',
      'disconnected',
    ] as const)
      machine.setState(next);
    expect(states).toEqual([
      'idle',
      'connecting',
      'connected',
      'reconnecting',
      'connected',
      'disconnected',
    ]);
  });
});

describe('CauseRecorder', () => {
  it('passes every line on and remembers the last warning or error until cleared', () => {
    const lines: string[] = [];
    const recorder = new CauseRecorder({
      log: line => lines.push(`log ${line}`),
      warn: line => lines.push(`warn ${line}`),
      error: line => lines.push(`error ${line}`),
    });
    recorder.log('hello');
    expect(recorder.last).toBeUndefined();
    recorder.warn('connect failed: ECONNREFUSED');
    recorder.error('redis connection: ETIMEDOUT');
    expect(recorder.last).toBe('redis connection: ETIMEDOUT');
    recorder.clear();
    expect(recorder.last).toBeUndefined();
    expect(lines).toEqual([
      'log hello',
      'warn connect failed: ECONNREFUSED',
      'error redis connection: ETIMEDOUT',
    ]);
  });
});

describe('connectWithin', () => {
  it('resolves with the attempt, and rejects with ConnectTimeoutError naming the last failure', async () => {
    const recorder = new CauseRecorder(silent);
    await expect(connectWithin(Promise.resolve(), 'C', 50, recorder)).resolves.toBeUndefined();
    recorder.warn('connect failed: ECONNREFUSED');
    const never = new Promise<void>(() => undefined);
    const error = await connectWithin(never, 'C', 10, recorder).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectTimeoutError);
    expect(error).toMatchObject({
      what: 'C',
      timeoutMs: 10,
      reason: 'connect failed: ECONNREFUSED',
      message: 'C could not connect within 10 ms (last failure: connect failed: ECONNREFUSED)',
    });
  });

  it("passes the attempt's own failure through", async () => {
    const recorder = new CauseRecorder(silent);
    await expect(
      connectWithin(Promise.reject(new Error('hub is stopped')), 'C', 1000, recorder),
    ).rejects.toThrow('hub is stopped');
  });
});

describe('heraldLifecycle: connection loss and recovery in the log', () => {
  it('logs a WARN with the reason when a live connection is lost, an INFO with the downtime when it is back', () => {
    const logger = memoryLogger();
    const nest: string[] = [];
    const { state } = heraldLifecycle(
      'RedisStreamsServer',
      logger,
      { next: s => nest.push(s) },
      new EventEmitter(),
    );
    state.setState('connecting');
    state.setState('reconnecting', 'connect ECONNREFUSED'); // never connected yet: no loss
    state.setState('connected');
    state.setState('reconnecting', 'read ECONNRESET');
    state.setState('reconnecting', 'connect ECONNREFUSED'); // the same outage
    state.setState('connected');
    expect(logger.lines).toHaveLength(2);
    expect(logger.lines[0]).toBe(
      'warn microservice microservice-connection-lost: connection lost: read ECONNRESET [owner=RedisStreamsServer]',
    );
    expect(logger.lines[1]).toMatch(
      /^microservice microservice-connection-recovered: connection recovered \[owner=RedisStreamsServer downtimeMs=\d+\]$/,
    );
    // Nest's status sees every change (a new reason too); the log only the loss and the recovery.
    expect(nest).toEqual([
      'connecting',
      'reconnecting',
      'connected',
      'reconnecting',
      'reconnecting',
      'connected',
    ]);
  });
});

import { IllegalStateTransitionError } from '../../../../lib/common/state-machine.js';
import {
  CauseRecorder,
  heraldStateMachine,
} from '../../../../lib/microservices/base/herald.state.js';

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

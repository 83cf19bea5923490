import { IllegalStateTransitionError, StateMachine } from '../../../lib/common/state-machine.js';
import type { HeraldLogger } from '../../../lib/common/logger.js';

type S = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';
const table = {
  idle: ['connecting', 'closed'],
  connecting: ['connected', 'reconnecting', 'closed'],
  connected: ['reconnecting', 'closed'],
  reconnecting: ['connected', 'closed'],
  closed: [],
} as const satisfies Record<S, readonly S[]>;

describe('StateMachine', () => {
  it('moves only along the table, logs each move at debug and feeds status$', () => {
    const debug: string[] = [];
    const logger: HeraldLogger = {
      log: () => undefined,
      warn: () => undefined,
      error: () => undefined,
      debug: m => debug.push(m),
    };
    const machine = new StateMachine<S, { role: string }>('test thing', 'idle', table, logger);
    const seen: string[] = [];
    machine.status$.subscribe(s =>
      seen.push(`${s.state}${s.reason ? `:${s.reason}` : ''}${s.role ? `/${s.role}` : ''}`),
    );
    machine.setState('connecting');
    machine.setState('reconnecting', 'ECONNREFUSED');
    machine.setState('reconnecting', 'ECONNREFUSED'); // nothing new: not published again
    machine.setState('reconnecting', 'ETIMEDOUT');
    machine.setState('connected', undefined, { role: 'broker' });
    expect(seen).toEqual([
      'idle',
      'connecting',
      'reconnecting:ECONNREFUSED',
      'reconnecting:ETIMEDOUT',
      'connected/broker',
    ]);
    expect(debug).toEqual([
      'test thing: idle -> connecting',
      'test thing: connecting -> reconnecting (ECONNREFUSED)',
      'test thing: reconnecting -> reconnecting (ETIMEDOUT)',
      'test thing: reconnecting -> connected',
    ]);
    expect(machine.is('connected', 'closed')).toBe(true);
    expect(machine.status).toEqual({ state: 'connected', role: 'broker' });
  });

  it('refuses an illegal transition, naming the owner and both states', () => {
    const machine = new StateMachine<S>('pg hub', 'idle', table);
    machine.setState('closed');
    expect(machine.can('connected')).toBe(false);
    expect(() => machine.setState('connected')).toThrow(
      new IllegalStateTransitionError('pg hub', 'closed', 'connected'),
    );
    expect(() => machine.setState('connected')).toThrow(
      'pg hub: illegal state transition closed -> connected',
    );
  });

  it('completes status$ when told', () => {
    const machine = new StateMachine<S>('x', 'idle', table);
    let completed = false;
    machine.status$.subscribe({ complete: () => (completed = true) });
    machine.complete();
    expect(completed).toBe(true);
  });
});

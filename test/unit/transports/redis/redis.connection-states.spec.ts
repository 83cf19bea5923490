import { BehaviorSubject } from 'rxjs';
import type { TransportStatus } from '../../../../lib/index.js';
import {
  ConnectionStates,
  fold,
} from '../../../../lib/transports/redis/redis.connection-states.js';

describe('ConnectionStates: the one fold of Redis connection states', () => {
  it('folds to connected when all are, else the worst state with its role', () => {
    expect(fold([{ state: 'connected' }, { state: 'connected' }])).toEqual({ state: 'connected' });
    expect(
      fold([
        { state: 'connecting', role: 'a' },
        { state: 'disconnected', role: 'b', reason: 'cut' },
      ]),
    ).toEqual({ state: 'disconnected', role: 'b', reason: 'cut' });
    expect(fold([{ state: 'connected' }, { state: 'closed', role: 'x' }]).state).toBe(
      'disconnected',
    );
    expect(fold([]).state).toBe('connecting');
  });

  it('tells connected(again), reconnecting() and every folded change', () => {
    const calls: string[] = [];
    const states = new ConnectionStates({
      connected: again => calls.push(`connected:${again}`),
      reconnecting: () => calls.push('reconnecting'),
      onStatus: status => calls.push(`status:${status.state}`),
    });
    const a = new BehaviorSubject<TransportStatus>({ state: 'connecting' });
    const b = new BehaviorSubject<TransportStatus>({ state: 'connecting' });
    states.watch('a', a);
    states.watch('b', b);
    a.next({ state: 'connected' });
    b.next({ state: 'connected' });
    b.next({ state: 'reconnecting' });
    b.next({ state: 'connected' });
    states.close();
    a.next({ state: 'disconnected' });
    expect(calls).toEqual([
      'status:connected',
      'connected:false',
      'status:reconnecting',
      'reconnecting',
      'status:connected',
      'connected:true',
    ]);
  });
});

import { distinctUntilChanged, map, of, switchMap, type Observable } from 'rxjs';
import type { StateChange } from '../common/state-machine.js';
import type { TransportState, TransportStatus } from '../interfaces/transport.interface.js';

/**
 * The bus's own life. `reconnecting`: the transport's `connect()` has not
 * resolved and the transport reported a failed attempt (posts wait in the
 * bounded buffer). `failed`: `connect()` rejected (the transport gave up):
 * every waiting and later post rejects with that cause. `draining`: the
 * shutdown drain began: what was accepted runs, new posts are refused with
 * `BusDrainingError` (on transports that leave the process, `post` is
 * still sent, for the other processes). @publicApi
 */
export type EventBusState =
  | 'idle'
  | 'connecting'
  | 'reconnecting'
  | 'connected'
  | 'failed'
  | 'draining'
  | 'closing'
  | 'closed';

export const BUS_TRANSITIONS = {
  idle: ['connecting', 'draining', 'closing'],
  connecting: ['reconnecting', 'connected', 'failed', 'draining', 'closing'],
  reconnecting: ['connecting', 'connected', 'failed', 'draining', 'closing'],
  connected: ['draining', 'closing'],
  failed: ['draining', 'closing'],
  draining: ['closing'],
  closing: ['closed'],
  closed: [],
} as const satisfies { readonly [K in EventBusState]: readonly EventBusState[] };

/**
 * What `status$` carries: a {@link TransportStatus} (so code written for a
 * transport's feed reads it unchanged) plus the bus's own state in `bus`.
 * @publicApi
 */
export interface EventBusStatus extends TransportStatus {
  readonly bus: EventBusState;
}

/** How each bus state reads in the transport vocabulary of `status$` (undefined: the transport's own). */
const AS_TRANSPORT_STATE: Readonly<Record<EventBusState, TransportState | undefined>> = {
  idle: 'connecting',
  connecting: 'connecting',
  reconnecting: 'reconnecting',
  connected: undefined,
  failed: 'disconnected',
  draining: undefined,
  closing: undefined,
  closed: 'closed',
};

export function pick(role: string | undefined): { role: string } | undefined {
  return role === undefined ? undefined : { role };
}

/**
 * The bus's public status feed: its own state, read in the transport's
 * vocabulary, and the transport's own status while it is connected.
 */
export function busStatus$(
  machine: Observable<StateChange<EventBusState, { role: string }>>,
  transport: Observable<TransportStatus>,
): Observable<EventBusStatus> {
  return machine.pipe(
    switchMap(({ state: bus, reason, role }): Observable<EventBusStatus> => {
      const state = AS_TRANSPORT_STATE[bus];
      if (state === undefined) return transport.pipe(map(status => ({ ...status, bus })));
      return of({ state, bus, ...(reason === undefined ? {} : { reason }), ...pick(role) });
    }),
    distinctUntilChanged(
      (a, b) =>
        a.state === b.state && a.bus === b.bus && a.reason === b.reason && a.role === b.role,
    ),
  );
}

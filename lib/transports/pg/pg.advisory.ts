import type { PgKey } from './pg.codec.js';

/** Why a hub speaks to its consumers. @publicApi */
export type PgHubAction = 'connect' | 'disconnect' | 'reconnect' | 'stop' | 'subscribe' | 'close';

/**
 * A supervisory notification, delivered as the `value` of an event with a
 * null topic and an empty key. `final` is true for `stop` and `close`: the
 * consumer receives nothing after it. `topic` is set for `subscribe`.
 * @publicApi
 */
export interface PgHubAdvisory {
  readonly action: PgHubAction;
  readonly final: boolean;
  readonly topic?: string;
}

/** An event a consumer receives: a notification, or an advisory (topic null). @publicApi */
export interface PgHubEvent {
  /** The channel, or null for an advisory. */
  readonly topic: string | null;
  readonly key: PgKey;
  /** The decoded JSON value (null for none); a {@link PgHubAdvisory} when topic is null. */
  readonly value: unknown;
  /** The backend pid of the session that sent the notification (absent on advisories). */
  readonly processId?: number;
}

/**
 * A notification as a raw consumer receives it: the key decoded, the value
 * left as its JSON text (pure ASCII, `undefined` for none), for consumers
 * that parse it themselves. @publicApi
 */
export interface PgHubRawEvent {
  readonly topic: string;
  readonly key: PgKey;
  readonly json: string | undefined;
  readonly processId: number;
}

/** An advisory event. @publicApi */
export interface PgHubAdvisoryEvent extends PgHubEvent {
  readonly topic: null;
  readonly value: PgHubAdvisory;
}

const NO_KEY: PgKey = Object.freeze([]) as PgKey;

/** Builds a frozen advisory event. */
export function advisory(action: PgHubAction, topic?: string): PgHubAdvisoryEvent {
  const final = action === 'stop' || action === 'close';
  const value: PgHubAdvisory = Object.freeze(
    topic === undefined ? { action, final } : { action, topic, final },
  );
  return Object.freeze({ topic: null, key: NO_KEY, value });
}

/** True when the event is an advisory rather than a notification. @publicApi */
export function isAdvisory(event: PgHubEvent): event is PgHubAdvisoryEvent {
  return event.topic === null;
}

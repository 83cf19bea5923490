import type { Observable } from 'rxjs';
import { StateMachine, type StateChange } from '../../common/state-machine.js';
import type { PgHubAdvisoryEvent, PgHubEvent, PgHubRawEvent } from './pg.advisory.js';

/** A consumer is `open` until `close()` or its hub's stop. @publicApi */
export type PgConsumerState = 'open' | 'closed';

const CONSUMER_TRANSITIONS = { open: ['closed'], closed: [] } as const;

/**
 * Receives a consumer's events: notifications of its topics and advisories.
 * A throwing or rejecting hook is logged and counted, never fatal.
 * @publicApi
 */
export type PgHubHook = (event: PgHubEvent, consumer: PgConsumer) => unknown;

/** The hook of a raw consumer (`hub.rawConsumer`): values as JSON text. @publicApi */
export type PgHubRawHook = (
  event: PgHubRawEvent | PgHubAdvisoryEvent,
  consumer: PgConsumer,
) => unknown;

/** What a consumer asks of its hub. */
export interface PgConsumerLink {
  subscribe(consumer: PgConsumer, topics: readonly string[]): Promise<void>;
  unsubscribe(consumer: PgConsumer, topics: readonly string[]): void;
  close(consumer: PgConsumer): void;
}

/** Flattens `('a', ['b', 'c'])` into `['a', 'b', 'c']` (pg-hub accepts both). */
export function flattenTopics(topics: readonly (string | readonly string[])[]): string[] {
  const flat: string[] = [];
  for (const topic of topics) {
    if (Array.isArray(topic)) flat.push(...(topic as readonly string[]));
    else flat.push(topic as string);
  }
  return flat;
}

/**
 * An event consumer of a {@link PgHub}: a hook and the topics it subscribed
 * to. Made by `hub.consumer(hook, ...topics)`.
 * @publicApi
 */
export class PgConsumer {
  /** @internal */
  readonly subscribed = new Set<string>();
  private readonly machine = new StateMachine<PgConsumerState>(
    'pg consumer',
    'open',
    CONSUMER_TRANSITIONS,
  );

  /** @internal */
  constructor(
    private readonly link: PgConsumerLink,
    readonly hook: PgHubHook | PgHubRawHook,
    /** True for a raw consumer: notifications come as {@link PgHubRawEvent}. */
    readonly raw = false,
  ) {}

  /** The topics subscribed to. */
  get topics(): readonly string[] {
    return [...this.subscribed];
  }

  /** True after `close()` or after the hub stopped. */
  get closed(): boolean {
    return this.machine.state === 'closed';
  }

  /** `open`, then `closed` (with the reason: closed, or the hub stopped); completes then. */
  get status$(): Observable<StateChange<PgConsumerState>> {
    return this.machine.status$;
  }

  /**
   * Adds topics. Throws `InvalidTopicError` at the call for a bad topic
   * (nothing is subscribed then). Each new topic is announced with a
   * `subscribe` advisory once its LISTEN has run; the promise resolves then
   * (and rejects with `TransportClosedError` if the hub stops first; an
   * unawaited rejection is not reported as unhandled).
   */
  subscribe(...topics: (string | readonly string[])[]): Promise<void> {
    return this.link.subscribe(this, flattenTopics(topics));
  }

  /** Removes topics; the hub UNLISTENs those no other consumer wants. */
  unsubscribe(...topics: (string | readonly string[])[]): void {
    this.link.unsubscribe(this, flattenTopics(topics));
  }

  /** Detaches the consumer; it receives a final `close` advisory, then nothing. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.link.close(this);
  }

  /** @internal */
  markClosed(reason: string): void {
    this.subscribed.clear();
    if (this.closed) return;
    this.machine.setState('closed', reason);
    this.machine.complete();
  }
}

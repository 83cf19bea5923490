import type { Notification } from 'pg';
import { describeError } from '../../common/describe-error.js';
import { TransportClosedError } from '../../common/errors.js';
import { logLine } from '../../common/log-line.js';
import type { HeraldLogger } from '../../common/logger.js';
import { WarningLimiter } from '../../common/warning-limiter.js';
import {
  advisory,
  type PgHubAction,
  type PgHubAdvisoryEvent,
  type PgHubEvent,
  type PgHubRawEvent,
} from './pg.advisory.js';
import { splitPayload, validateTopic } from './pg.codec.js';
import {
  PgConsumer,
  type PgConsumerLink,
  type PgHubHook,
  type PgHubRawHook,
} from './pg.consumer.js';
import { PgDecodeError } from './pg.errors.js';
import { deepFreeze } from './pg.freeze.js';

/** What the consumer set asks of its hub. */
export interface PgConsumerSetHooks {
  /** True while the LISTEN connection is up: subscriptions settle only then. */
  isConnected(): boolean;
  /** The topics LISTENed on the current connection. */
  isListening(topic: string): boolean;
  /** The wanted topics changed: bring the LISTENs in line. */
  syncListens(): void;
}

/** The consumer set's counters (part of `PgHubStats`). */
export interface PgConsumerCounters {
  rxEventCount: number;
  rxErrorCount: number;
  rxUnroutableCount: number;
  subscribeCount: number;
  hookErrorCount: number;
}

interface PendingSubscribe {
  readonly consumer: PgConsumer;
  readonly topic: string;
  done(error?: Error): void;
}

const noop = (): void => undefined;

/** Marks a promise as handled so an unawaited rejection never crashes the process. */
export function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(noop);
  return promise;
}

/**
 * The consumers of a hub and what they want: which topics (the LISTENs the
 * connection must hold), the `subscribe` advisory of each topic once its
 * LISTEN ran (exactly once per consumer and topic, however hooks re-enter),
 * and the routing of each notification to the consumers of its channel, as
 * one deep-frozen event they all share.
 */
export class PgConsumerSet {
  readonly counters: PgConsumerCounters = {
    rxEventCount: 0,
    rxErrorCount: 0,
    rxUnroutableCount: 0,
    subscribeCount: 0,
    hookErrorCount: 0,
  };
  private readonly consumers = new Set<PgConsumer>();
  /** Topic -> consumers that want it. */
  private readonly wanted = new Map<string, Set<PgConsumer>>();
  /** Subscriptions waiting for their LISTEN. */
  private pendingSubscribes: PendingSubscribe[] = [];
  /** settle() is running (a hook re-entered it): the outer pass loops instead. */
  private settling = false;
  private settleAgain = false;
  /** Bad payloads and failing hooks can repeat per notification: one line per cause per interval. */
  private readonly warnings: WarningLimiter;

  private readonly link: PgConsumerLink = {
    subscribe: (consumer, topics) => this.subscribe(consumer, topics),
    unsubscribe: (consumer, topics) => this.unsubscribe(consumer, topics),
    close: consumer => this.close(consumer),
  };

  constructor(
    private readonly hooks: PgConsumerSetHooks,
    private readonly logger: HeraldLogger,
    private readonly name: string,
  ) {
    this.warnings = new WarningLimiter(logger);
  }

  get size(): number {
    return this.consumers.size;
  }

  /** The topics some consumer wants. */
  wantedTopics(): string[] {
    return [...this.wanted.keys()];
  }

  add(hook: PgHubHook | PgHubRawHook, raw: boolean, topics: readonly string[]): PgConsumer {
    const consumer = new PgConsumer(this.link, hook, raw);
    this.consumers.add(consumer);
    if (topics.length > 0) void this.subscribe(consumer, topics);
    return consumer;
  }

  private subscribe(consumer: PgConsumer, topics: readonly string[]): Promise<void> {
    topics.forEach(validateTopic);
    if (consumer.closed || !this.consumers.has(consumer)) {
      return handled(Promise.reject(new TransportClosedError('pg consumer is closed')));
    }
    const waits: Promise<void>[] = [];
    for (const topic of topics) {
      if (consumer.subscribed.has(topic)) continue;
      consumer.subscribed.add(topic);
      this.counters.subscribeCount++;
      let set = this.wanted.get(topic);
      if (!set) this.wanted.set(topic, (set = new Set()));
      set.add(consumer);
      waits.push(
        new Promise<void>((resolve, reject) => {
          this.pendingSubscribes.push({
            consumer,
            topic,
            done: error => (error ? reject(error) : resolve()),
          });
        }),
      );
    }
    this.settle();
    this.hooks.syncListens();
    return handled(Promise.all(waits).then(noop));
  }

  /**
   * Announces each pending subscription whose topic is LISTENed now, once.
   * A hook may subscribe (or make) consumers from inside its advisory, which
   * calls back in here: the ready entries leave the list before any hook
   * runs, and a call made while hooks run only asks for another pass, so no
   * entry is ever seen by two passes (the daisy-chain bug: hooks re-entering
   * a pass announced earlier entries again, quadratically).
   */
  settle(): void {
    if (this.settling) {
      this.settleAgain = true;
      return;
    }
    this.settling = true;
    try {
      do {
        this.settleAgain = false;
        if (!this.hooks.isConnected()) return;
        const ready: PendingSubscribe[] = [];
        const still: PendingSubscribe[] = [];
        for (const pending of this.pendingSubscribes) {
          const gone = !pending.consumer.subscribed.has(pending.topic);
          if (gone || this.hooks.isListening(pending.topic)) ready.push(pending);
          else still.push(pending);
        }
        this.pendingSubscribes = still;
        for (const pending of ready) {
          if (!pending.consumer.subscribed.has(pending.topic)) {
            pending.done(
              new TransportClosedError(`unsubscribed from ${pending.topic} before its LISTEN ran`),
            );
            continue;
          }
          this.call(pending.consumer, advisory('subscribe', pending.topic));
          pending.done();
        }
      } while (this.settleAgain);
    } finally {
      this.settling = false;
    }
  }

  private unsubscribe(consumer: PgConsumer, topics: readonly string[]): void {
    for (const topic of topics) {
      if (!consumer.subscribed.delete(topic)) continue;
      const set = this.wanted.get(topic);
      set?.delete(consumer);
      if (set?.size === 0) this.wanted.delete(topic);
    }
    this.failPendingOf(consumer, false);
    this.hooks.syncListens();
  }

  private close(consumer: PgConsumer): void {
    if (!this.consumers.delete(consumer)) return;
    this.unsubscribe(consumer, [...consumer.subscribed]);
    consumer.markClosed('closed');
    this.failPendingOf(consumer, true);
    queueMicrotask(() => this.call(consumer, advisory('close')));
  }

  private failPendingOf(consumer: PgConsumer, all: boolean): void {
    this.pendingSubscribes = this.pendingSubscribes.filter(pending => {
      if (pending.consumer !== consumer) return true;
      if (!all && consumer.subscribed.has(pending.topic)) return true;
      pending.done(
        new TransportClosedError(`pg consumer left ${pending.topic} before its LISTEN ran`),
      );
      return false;
    });
  }

  /** Routes a notification to the consumers of its channel. */
  receive(message: Notification): void {
    this.counters.rxEventCount++;
    const consumers = this.wanted.get(message.channel);
    if (!consumers || consumers.size === 0) {
      this.counters.rxUnroutableCount++;
      return;
    }
    let raw: PgHubRawEvent;
    let event: PgHubEvent | undefined;
    try {
      // splitPayload's key is frozen already (no second freeze, a runtime call per event).
      const { key, json } = splitPayload(message.payload ?? '');
      raw = Object.freeze({ topic: message.channel, key, json, processId: message.processId });
      // Parsed once, and only when a consumer wants values; deep-frozen, as
      // pg-hub does, because every consumer of the topic gets this same
      // object: one consumer can never change what the next one sees.
      for (const consumer of consumers) {
        if (consumer.raw) continue;
        const value = deepFreeze(parseValue(json));
        event = Object.freeze({ topic: message.channel, key, value, processId: message.processId });
        break;
      }
    } catch (error) {
      this.counters.rxErrorCount++;
      const reason = error instanceof PgDecodeError ? error.reason : describeError(error);
      this.warnings.warn(
        `notification-dropped:${message.channel}`,
        logLine(
          'pg',
          'hub-notification-dropped',
          `dropped a notification that is not a pg-hub event: ${reason}`,
          {
            hub: this.name,
            channel: message.channel,
            pid: message.processId,
          },
        ),
      );
      return;
    }
    for (const consumer of consumers.size === 1 ? consumers : [...consumers]) {
      this.call(consumer, consumer.raw ? raw : event!);
    }
  }

  /** Sends an advisory to every consumer. */
  broadcast(action: PgHubAction): void {
    const event = advisory(action);
    for (const consumer of [...this.consumers]) this.call(consumer, event);
  }

  /** Stop: fails waiting subscriptions, closes every consumer with a final `stop` advisory. */
  stop(closed: Error): void {
    for (const pending of this.pendingSubscribes) pending.done(closed);
    this.pendingSubscribes = [];
    const event = advisory('stop');
    for (const consumer of [...this.consumers]) {
      consumer.markClosed('hub stopped');
      this.call(consumer, event);
    }
    this.consumers.clear();
    this.wanted.clear();
  }

  private call(consumer: PgConsumer, event: PgHubEvent | PgHubRawEvent | PgHubAdvisoryEvent): void {
    try {
      const result = (consumer.hook as (event: unknown, consumer: PgConsumer) => unknown)(
        event,
        consumer,
      );
      if (result instanceof Promise) result.catch(error => this.hookFailed(error));
    } catch (error) {
      this.hookFailed(error);
    }
  }

  /** Counts and logs a hook (or a confirm callback) that threw or rejected. */
  hookFailed(error: unknown): void {
    this.counters.hookErrorCount++;
    this.warnings.error(
      'hub-hook-failed',
      logLine('pg', 'hub-hook-failed', `consumer hook failed: ${describeError(error)}`, {
        hub: this.name,
      }),
    );
  }
}

/** The value of a payload's JSON text; throws PgDecodeError for bad JSON. */
function parseValue(json: string | undefined): unknown {
  if (json === undefined) return null;
  try {
    return JSON.parse(json);
  } catch (error) {
    throw new PgDecodeError(`bad JSON value (${(error as Error).message})`);
  }
}

import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { EventBus } from '../bus/event-bus.js';
import { receivedEvent } from '../bus/event-bus.envelope.js';
import { jsonCodec } from '../common/json.codec.js';
import { EVENT_BUS, EVENTS_MODULE_OPTIONS } from '../events.constants.js';
import type { EventsModuleOptions } from '../events-module-options.interface.js';
import type { Codec } from '../interfaces/codec.interface.js';
import type { Envelope, HeraldEvent } from '../interfaces/envelope.interface.js';
import type { Settlement } from '../interfaces/transport.interface.js';
import { matchesEvent, type EventMatcher } from './event.matcher.js';
import { RecordingTransport } from './recording.transport.js';

/** Options of {@link HeraldTestKit.deliver}: what a remote event carries besides its data. @publicApi */
export interface FakeDeliveryOptions {
  /** 1 = first delivery; more = a redelivery. @default 1 */
  attempt?: number;
  headers?: Readonly<Record<string, string>>;
  key?: readonly (bigint | number)[];
  unique?: string;
  /** @default a fresh UUID */
  id?: string;
  /** The poster. @default `'remote-test'` (not this process) */
  origin?: string;
}

/** The test failed: what was expected and what was posted. @publicApi */
export class EventExpectationError extends Error {
  override readonly name = 'EventExpectationError';
}

function describeData(data: unknown): string {
  try {
    const text = JSON.stringify(data, (_key, value: unknown) =>
      typeof value === 'bigint' ? `${value}n` : value,
    );
    return text === undefined ? String(data) : text.length > 200 ? `${text.slice(0, 200)}…` : text;
  } catch {
    return String(data);
  }
}

/**
 * The test side of `EventsTestingModule`: what the app posted, assertions
 * on it that work under any runner, idle waiting, and fake deliveries from
 * "another process" to the app's handlers.
 * @publicApi
 */
@Injectable()
export class HeraldTestKit {
  private readonly codec: Codec;
  private readonly transport: RecordingTransport;
  private cleared = 0;

  constructor(
    @Inject(EVENT_BUS) private readonly bus: EventBus,
    @Inject(EVENTS_MODULE_OPTIONS) options: EventsModuleOptions,
  ) {
    if (!(bus.transport instanceof RecordingTransport)) {
      throw new Error('HeraldTestKit needs EventsTestingModule (its transport records posts)');
    }
    this.transport = bus.transport;
    this.codec = options.codec ?? jsonCodec;
  }

  /** Every event posted with `post` since the start (or the last {@link clear}), decoded, in order. */
  get posted(): HeraldEvent[] {
    return this.transport.envelopes.slice(this.cleared).map(envelope => this.decoded(envelope));
  }

  /**
   * The first posted `source`/`event` whose data matches `matcher` (a
   * predicate, or a pattern matched as a deep subset; Jest's and Vitest's
   * `expect.any(...)`/`expect.objectContaining(...)` work inside it).
   * Throws {@link EventExpectationError} listing what was posted otherwise.
   * Posts are recorded once the transport accepted them: `await` the post,
   * or {@link whenIdle}, first.
   */
  expectPosted<T = unknown>(
    source: string,
    event: string,
    matcher?: EventMatcher<T>,
  ): HeraldEvent<T> {
    const found = this.posted.find(
      posted =>
        posted.source === source &&
        posted.event === event &&
        matchesEvent(posted, matcher as EventMatcher),
    );
    if (found) return found as HeraldEvent<T>;
    throw new EventExpectationError(
      `expected a post of ${source}/${event}${matcher === undefined ? '' : ' matching the matcher'}; posted: ${this.list()}`,
    );
  }

  /** Throws {@link EventExpectationError} if `source`/`event` (matching `matcher`) was posted. */
  expectNotPosted(source: string, event: string, matcher?: EventMatcher): void {
    const found = this.posted.find(
      posted => posted.source === source && posted.event === event && matchesEvent(posted, matcher),
    );
    if (found) {
      throw new EventExpectationError(
        `expected no post of ${source}/${event}; posted ${source}/${event} ${describeData(found.data)} (id ${found.id})`,
      );
    }
  }

  /** Forgets what was posted so far. */
  clear(): void {
    this.cleared = this.transport.envelopes.length;
  }

  /**
   * Resolves once everything posted so far is handled and nothing runs;
   * rejects with `IdleTimeoutError` naming what is busy after `timeoutMs`.
   */
  whenIdle(options?: { timeoutMs?: number }): Promise<void> {
    return this.bus.whenIdle(options);
  }

  /**
   * Delivers an event to the app's handlers as if another process had
   * posted it (through the codec, like a real arrival). Resolves with how
   * the bus settled it: `{ outcome: 'ack' }`, or `{ outcome: 'nack', error }`
   * when a handler failed (what a redelivering transport would redeliver).
   */
  deliver(
    source: string,
    event: string,
    data?: unknown,
    options: FakeDeliveryOptions = {},
  ): Promise<Settlement> {
    const envelope: Envelope = {
      id: options.id ?? randomUUID(),
      source,
      event,
      payload: this.codec.encode(data),
      key: options.key?.map(part => BigInt(part)),
      unique: options.unique,
      origin: options.origin ?? 'remote-test',
      occurredAt: new Date().toISOString(),
      headers: options.headers,
    };
    return this.transport.deliver(envelope, options.attempt ?? 1);
  }

  private decoded(envelope: Envelope): HeraldEvent {
    return receivedEvent(envelope, this.codec, 1);
  }

  private list(): string {
    const posted = this.posted;
    if (posted.length === 0) return 'nothing';
    return posted.map(p => `${p.source}/${p.event} ${describeData(p.data)}`).join('; ');
  }
}

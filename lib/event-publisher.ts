import { Inject, Injectable } from '@nestjs/common';
import type { Observable } from 'rxjs';
import type { EventHandler } from './interfaces/envelope.interface.js';
import type { EventBus, EventBusStats, EventBusStatus } from './bus/event-bus.js';
import type {
  HandlerOutcome,
  LocalPostOptions,
  PostOptions,
  PostReceipt,
} from './bus/event-bus.options.js';
import { EVENT_BUS } from './events.constants.js';

/**
 * The app's door to its bus: inject it anywhere `EventsModule` is visible.
 * Every app instance has its own bus, so two apps in one process stay apart.
 * The bus's life follows the app's (see `EventsModule`); after `app.close()`
 * `post` rejects and `postLocal` throws `TransportClosedError`.
 * @publicApi
 */
@Injectable()
export class EventPublisher {
  constructor(@Inject(EVENT_BUS) private readonly bus: EventBus) {}

  /**
   * Posts to every process the transport reaches, this one included (its own
   * handlers receive the event through the same path as everyone's).
   * Resolves to `{ id }` once the transport accepted the event; rejects with
   * a typed error, before anything is sent, for bad names, data, key or
   * headers. Posts made before the app is ready wait in a bounded buffer.
   */
  post(source: string, event: string, data?: unknown, options?: PostOptions): Promise<PostReceipt> {
    return this.bus.post(source, event, data, options);
  }

  /**
   * Runs this process's handlers with the very object: no codec, no
   * transport, no `unique`. Throws `QueueFullError` when `maxPending` events
   * wait, `BusDrainingError` once the shutdown drain began.
   *
   * With `{ wait: true }` (like `emitAsync`) it returns a promise of each
   * handler's outcome (`{ handler, status, value | reason }`, in registration
   * order) once all settled; with `rejectOnError: true` it rejects with an
   * `AggregateError` of the handlers' errors when any failed.
   */
  postLocal(source: string, event: string, data?: unknown): void;
  postLocal(
    source: string,
    event: string,
    data: unknown,
    options: LocalPostOptions & { wait: true },
  ): Promise<HandlerOutcome[]>;
  postLocal(
    source: string,
    event: string,
    data?: unknown,
    options?: LocalPostOptions,
  ): void | Promise<HandlerOutcome[]>;
  postLocal(
    source: string,
    event: string,
    data?: unknown,
    options?: LocalPostOptions,
  ): void | Promise<HandlerOutcome[]> {
    return this.bus.postLocal(source, event, data, options);
  }

  /**
   * Resolves once every event this process posted so far is settled
   * (handled here, refused, or counted lost) and nothing is queued or
   * running; rejects with `IdleTimeoutError` after `timeoutMs` (default
   * 5000), saying what is still busy. For tests and scripts: never waits for
   * ever, even on an at-most-once transport.
   */
  whenIdle(options?: { timeoutMs?: number }): Promise<void> {
    return this.bus.whenIdle(options);
  }

  /**
   * Adds a handler by hand, like `@OnEvent(source?, ...events)`.
   * @returns a disposer that removes exactly these patterns.
   */
  register(handler: EventHandler, source?: string, ...events: string[]): () => boolean {
    return this.bus.register(handler, source, ...events);
  }

  /** Removes a handler's patterns (all of them with no source). @returns true if something was removed. */
  unregister(handler: EventHandler, source?: string, ...events: string[]): boolean {
    return this.bus.unregister(handler, source, ...events);
  }

  /**
   * The bus's status: `connecting`, `reconnecting` with the cause while the
   * transport's `connect()` retries, then the transport's own status; `bus`
   * says the bus's state (`failed` once the transport gave up).
   */
  get status$(): Observable<EventBusStatus> {
    return this.bus.status$;
  }

  /** The bus's counters and gauges, with the transport's under `transport`. */
  stats(): EventBusStats {
    return this.bus.stats();
  }

  /**
   * Resolves once the transport is connected and dispatch has started (after
   * every module's `onApplicationBootstrap`); rejects with
   * `TransportClosedError` if the app closes first. Do not await it inside a
   * lifecycle hook: it would wait for the very bootstrap it is part of.
   */
  waitUntilReady(): Promise<void> {
    return this.bus.waitUntilReady();
  }
}

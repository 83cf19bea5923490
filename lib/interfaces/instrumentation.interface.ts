import type { HeraldLogger } from '../common/logger.js';
import type { Envelope, HeraldEvent } from './envelope.interface.js';

/** String metadata that carries trace context (`traceparent`, `tracestate`). @publicApi */
export type CarrierHeaders = Readonly<Record<string, string>>;

/**
 * Telemetry hooks of one bus. The bus calls them only when an
 * {@link Instrumentation} was installed (`nest-herald/otel` installs one
 * when `@opentelemetry/api` is present); otherwise it holds `undefined` and
 * pays one property check per post, delivery and handler call.
 * @publicApi
 */
export interface BusInstrumentation {
  /**
   * Wraps one `post`: opens the producer span, calls `send` with the
   * options whose headers carry the trace context, and ends the span and
   * records the latency when the transport accepted or refused the event.
   */
  post<O extends { readonly headers?: CarrierHeaders }, R extends { readonly id: string }>(
    source: string,
    event: string,
    options: O | undefined,
    send: (options: O | undefined) => Promise<R>,
  ): Promise<R>;
  /** An envelope arrived from the transport. */
  delivered(envelope: Envelope): void;
  /** An event was dropped before its handlers ran. */
  dropped(source: string, event: string): void;
  /**
   * Runs one handler call (`call`) in a consumer span; returns what the
   * handler returned (a promise is observed, never replaced) and rethrows
   * what it threw.
   */
  handle(handler: string, event: HeraldEvent, call: () => unknown): unknown;
  /** The bus closed: stop observing its stats. */
  close(): void;
}

/**
 * Telemetry hooks of a microservice server or client (`PgNotifyServer`,
 * `RedisStreamsClient`, ...): producer spans on send, consumer spans around
 * handlers, the context carried in the packet's metadata. @publicApi
 */
export interface MessagingInstrumentation {
  /** Wraps one send: `send` gets the metadata with the trace context added. */
  send<R>(
    destination: string,
    metadata: CarrierHeaders | undefined,
    send: (metadata: CarrierHeaders | undefined) => Promise<R>,
  ): Promise<R>;
  /** Runs a handler in a consumer span, child of the context in `metadata`. */
  process<R>(
    destination: string,
    metadata: CarrierHeaders | undefined,
    id: string | undefined,
    run: () => Promise<R>,
  ): Promise<R>;
}

/**
 * What telemetry plugs into: one per process, installed with
 * `installInstrumentation` (lib/common/instrumentation.ts). @publicApi
 */
export interface Instrumentation {
  /** A bus on `transport` was built; `stats` reads its `stats()` for gauges. */
  bus(transport: string, stats: () => object, logger: HeraldLogger): BusInstrumentation;
  /** A microservice server or client of `system` (`pg-notify`, `redis-streams`). */
  messaging(system: string, role: 'server' | 'client'): MessagingInstrumentation;
}

import type * as OtelApi from '@opentelemetry/api';
import { isError } from '../common/describe-error.js';
import type { HeraldLogger } from '../common/logger.js';
import type { HeraldEvent, Envelope } from '../interfaces/envelope.interface.js';
import type {
  BusInstrumentation,
  CarrierHeaders,
  Instrumentation,
  MessagingInstrumentation,
} from '../interfaces/instrumentation.interface.js';
import { AttributeGuard } from './otel.attributes.js';
import { INSTRUMENTATION_SCOPE, MESSAGING_SYSTEM } from './otel.names.js';
import { createInstruments, type HeraldInstruments, type StatsSource } from './otel.metrics.js';

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  );
}

/** Settings of {@link OtelInstrumentation}, resolved. */
export interface OtelSettings {
  readonly maxAttributeSets: number;
  readonly metrics: boolean;
  readonly traces: boolean;
}

/**
 * The OpenTelemetry side of the telemetry plug, on the API module given (so
 * nothing here loads `@opentelemetry/api`; `otel.loader.ts` does, by
 * dynamic import). Spans (DESIGN: one consumer span per handler call):
 *
 * - `post` → a PRODUCER span `send <source>`, child of the active context,
 *   whose context is injected (W3C `traceparent`/`tracestate` with the
 *   default propagator) into the envelope's headers;
 * - each handler call → a CONSUMER span `process <source>`, child of the
 *   context extracted from the envelope's headers (a `postLocal` event:
 *   of the poster's active context), active while the handler runs, its
 *   error recorded.
 */
export class OtelInstrumentation implements Instrumentation {
  private readonly tracer: OtelApi.Tracer;
  private readonly instruments?: HeraldInstruments;
  private readonly sources = new Set<StatsSource>();
  readonly guard: AttributeGuard;

  constructor(
    private readonly api: typeof OtelApi,
    private readonly settings: OtelSettings,
  ) {
    this.tracer = api.trace.getTracer(INSTRUMENTATION_SCOPE);
    this.guard = new AttributeGuard(settings.maxAttributeSets);
    if (settings.metrics) {
      this.instruments = createInstruments(
        api.metrics.getMeter(INSTRUMENTATION_SCOPE),
        this.sources,
        () => this.guard.slots(),
      );
    }
  }

  /** Stops observing (this instrumentation was replaced or removed). */
  shutdown(): void {
    this.instruments?.stop();
    this.sources.clear();
  }

  /** Adds a stats source (an FFI runtime) to the observable instruments; returns its remover. */
  observe(source: StatsSource): () => void {
    this.sources.add(source);
    return () => void this.sources.delete(source);
  }

  bus(transport: string, stats: () => object, logger: HeraldLogger): BusInstrumentation {
    const remove = this.observe({ kind: 'bus', name: transport, read: stats });
    return new OtelBusHooks(this.api, this.tracer, this.instruments, this.guard, {
      transport,
      logger,
      traces: this.settings.traces,
      close: remove,
    });
  }

  messaging(system: string, role: 'server' | 'client'): MessagingInstrumentation {
    return new OtelMessagingHooks(this.api, this.tracer, system, role, this.settings.traces);
  }
}

interface BusSettings {
  readonly transport: string;
  readonly logger: HeraldLogger;
  readonly traces: boolean;
  readonly close: () => void;
}

/** The hooks of one bus. */
class OtelBusHooks implements BusInstrumentation {
  private readonly transportAttrs: { readonly transport: string };

  constructor(
    private readonly api: typeof OtelApi,
    private readonly tracer: OtelApi.Tracer,
    private readonly instruments: HeraldInstruments | undefined,
    private readonly guard: AttributeGuard,
    private readonly settings: BusSettings,
  ) {
    this.transportAttrs = { transport: settings.transport };
  }

  post<O extends { readonly headers?: CarrierHeaders }, R extends { readonly id: string }>(
    source: string,
    event: string,
    options: O | undefined,
    send: (options: O | undefined) => Promise<R>,
  ): Promise<R> {
    const { api, instruments, settings } = this;
    const slot = this.guard.event(settings.transport, source, event, settings.logger);
    slot.posted++;
    const started = performance.now();
    let span: OtelApi.Span | undefined;
    let sent: Promise<R>;
    if (settings.traces) {
      const headers = options?.headers;
      const active = api.context.active();
      const parent =
        headers?.traceparent !== undefined ? api.propagation.extract(active, headers) : active;
      span = this.tracer.startSpan(
        `send ${source}`,
        {
          kind: api.SpanKind.PRODUCER,
          attributes: {
            'messaging.system': MESSAGING_SYSTEM,
            'messaging.operation.type': 'send',
            'messaging.operation.name': 'send',
            'messaging.destination.name': source,
            'herald.event': event,
            'herald.transport': settings.transport,
          },
        },
        parent,
      );
      const context = api.trace.setSpan(parent, span);
      const carrier: Record<string, string> = { ...headers };
      api.propagation.inject(context, carrier);
      const withContext =
        carrier.traceparent !== undefined && carrier.traceparent !== headers?.traceparent
          ? ({ ...options, headers: carrier } as O)
          : options;
      sent = api.context.with(context, () => send(withContext));
    } else {
      sent = send(options);
    }
    return sent.then(
      receipt => {
        span?.setAttribute('messaging.message.id', receipt.id);
        span?.end();
        instruments?.publishDuration.record(
          (performance.now() - started) / 1000,
          this.transportAttrs,
        );
        return receipt;
      },
      (error: unknown) => {
        slot.publishFailed++;
        if (span) endWithError(api, span, error);
        throw error;
      },
    );
  }

  delivered(envelope: Envelope): void {
    const { settings } = this;
    this.guard.event(settings.transport, envelope.source, envelope.event, settings.logger)
      .delivered++;
  }

  dropped(source: string, event: string): void {
    const { settings } = this;
    this.guard.event(settings.transport, source, event, settings.logger).dropped++;
  }

  handle(handler: string, event: HeraldEvent, call: () => unknown): unknown {
    const { api, settings, instruments } = this;
    const started = performance.now();
    let span: OtelApi.Span | undefined;
    let result: unknown;
    const ended = (error: unknown, failed: boolean): void => {
      const slot = this.guard.event(settings.transport, event.source, event.event, settings.logger);
      if (failed) slot.failed++;
      else slot.handled++;
      if (instruments) {
        instruments.handlerDuration.record(
          (performance.now() - started) / 1000,
          this.guard.handler(settings.transport, handler, settings.logger),
        );
      }
      if (!span) return;
      if (failed) endWithError(api, span, error);
      else span.end();
    };
    try {
      if (settings.traces) {
        // A delivered envelope continues the poster's trace (its headers);
        // a postLocal event the caller's.
        const parent = event.local
          ? api.context.active()
          : api.propagation.extract(api.ROOT_CONTEXT, event.headers);
        span = this.tracer.startSpan(
          `process ${event.source}`,
          {
            kind: api.SpanKind.CONSUMER,
            attributes: {
              'messaging.system': MESSAGING_SYSTEM,
              'messaging.operation.type': 'process',
              'messaging.operation.name': 'process',
              'messaging.destination.name': event.source,
              'messaging.message.id': event.id,
              'herald.event': event.event,
              'herald.handler': handler,
              'herald.transport': settings.transport,
              'herald.attempt': event.attempt,
            },
          },
          parent,
        );
        result = api.context.with(api.trace.setSpan(parent, span), call);
      } else {
        result = call();
      }
    } catch (error) {
      ended(error, true);
      throw error;
    }
    if (isThenable(result)) {
      result.then(
        () => ended(undefined, false),
        (error: unknown) => ended(error, true),
      );
    } else {
      ended(undefined, false);
    }
    return result;
  }

  close(): void {
    this.settings.close();
  }
}

function endWithError(api: typeof OtelApi, span: OtelApi.Span, error: unknown): void {
  if (isError(error)) span.recordException(error);
  span.setStatus({
    code: api.SpanStatusCode.ERROR,
    message: isError(error) ? error.message : String(error),
  });
  span.end();
}

/** Ends `span` when `work` settles, recording a rejection on it; the result passes through. */
function endWhenSettled<R>(api: typeof OtelApi, span: OtelApi.Span, work: Promise<R>): Promise<R> {
  return work.then(
    value => {
      span.end();
      return value;
    },
    (error: unknown) => {
      endWithError(api, span, error);
      throw error;
    },
  );
}

/** The hooks of one microservice server or client. */
class OtelMessagingHooks implements MessagingInstrumentation {
  constructor(
    private readonly api: typeof OtelApi,
    private readonly tracer: OtelApi.Tracer,
    private readonly system: string,
    private readonly role: 'server' | 'client',
    private readonly traces: boolean,
  ) {}

  send<R>(
    destination: string,
    metadata: CarrierHeaders | undefined,
    send: (metadata: CarrierHeaders | undefined) => Promise<R>,
  ): Promise<R> {
    if (!this.traces) return send(metadata);
    const { api } = this;
    const active = api.context.active();
    const span = this.tracer.startSpan(
      `send ${destination}`,
      { kind: api.SpanKind.PRODUCER, attributes: this.attributes('send', destination) },
      active,
    );
    const context = api.trace.setSpan(active, span);
    const carrier: Record<string, string> = { ...metadata };
    api.propagation.inject(context, carrier);
    let sent: Promise<R>;
    try {
      sent = api.context.with(context, () => send(carrier));
    } catch (error) {
      endWithError(api, span, error);
      throw error;
    }
    return endWhenSettled(api, span, sent);
  }

  process<R>(
    destination: string,
    metadata: CarrierHeaders | undefined,
    id: string | undefined,
    run: () => Promise<R>,
  ): Promise<R> {
    if (!this.traces) return run();
    const { api } = this;
    const parent = api.propagation.extract(api.ROOT_CONTEXT, metadata ?? {});
    const attributes = this.attributes('process', destination);
    if (id !== undefined) attributes['messaging.message.id'] = id;
    const span = this.tracer.startSpan(
      `process ${destination}`,
      { kind: api.SpanKind.CONSUMER, attributes },
      parent,
    );
    return endWhenSettled(api, span, api.context.with(api.trace.setSpan(parent, span), run));
  }

  private attributes(operation: 'send' | 'process', destination: string): OtelApi.Attributes {
    return {
      'messaging.system': MESSAGING_SYSTEM,
      'messaging.operation.type': operation,
      'messaging.operation.name': operation,
      'messaging.destination.name': destination,
      'herald.transport': this.system,
      'herald.role': this.role,
    };
  }
}

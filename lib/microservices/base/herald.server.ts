import { EventEmitter } from 'node:events';
import {
  Server,
  type BaseRpcContext,
  type CustomTransportStrategy,
  type MessageHandler,
  type ReadPacket,
  type WritePacket,
} from '@nestjs/microservices';
import { isObservable, type Observable } from 'rxjs';
import { describeError, isError } from '../../common/describe-error.js';
import { currentInstrumentation } from '../../common/instrumentation.js';
import { logLine } from '../../common/log-line.js';
import type { HeraldLogger } from '../../common/logger.js';
import type { StateChange, StateMachine } from '../../common/state-machine.js';
import { WarningLimiter } from '../../common/warning-limiter.js';
import { REPLY_ADDRESS_SEPARATOR } from '../microservice.constants.js';
import type {
  HeraldMicroserviceEvents,
  HeraldMicroserviceStatus,
  HeraldServerOptions,
  HeraldStartup,
} from '../microservice.interface.js';
import { resolveHeraldServerOptions } from './herald.options.js';
import {
  connectWithin,
  heraldLifecycle,
  type CauseRecorder,
  type HeraldLifecycleState,
} from './herald.state.js';
import type { MessagingInstrumentation } from '../../interfaces/instrumentation.interface.js';
import { autoloadTelemetry } from '../../otel/otel.loader.js';
import { telemetrySystem, validatePattern } from './pattern.utils.js';

/** A request as the server sees it once deserialized. */
export interface HeraldIncomingPacket extends ReadPacket {
  readonly id?: string;
}

/** Nest's answer when a request names a pattern without handler (as its built-in transports send). */
const NO_MESSAGE_HANDLER = 'There is no matching message handler defined in the remote service.';

const noop = (): void => undefined;

/** Resolves when `stream` completes, rejects when it errors; values are ignored (an empty stream is a success). */
function completion(stream: Observable<unknown>): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.subscribe({ error: reject, complete: resolve });
  });
}

/**
 * The part of {@link PgNotifyServer} and {@link RedisStreamsServer} that has
 * nothing to do with the wire: pattern validation at `listen`, fail-fast or
 * degraded start, status and `on()`, and the two ways a message is handled
 * (through Nest's `handleEvent` / `handleRequest`, so processing hooks,
 * guards, interceptors, pipes and filters apply as on built-in transports).
 *
 * Error rule for events on transports that acknowledge
 * (`propagatesEventHandlerErrors = true`): the event is acknowledged once the
 * handler's result settled, when it resolved or its Observable completed;
 * it is not acknowledged when the handler chain ends in an error, which is
 * what Nest's default exception filter does (it rethrows as an erroring
 * Observable). A filter that returns a value or a completing Observable has
 * handled the error: the event is acknowledged.
 * @publicApi
 */
export abstract class HeraldServer<Context extends BaseRpcContext>
  extends Server<HeraldMicroserviceEvents, HeraldMicroserviceStatus>
  implements CustomTransportStrategy
{
  protected readonly events = new EventEmitter();
  protected readonly heraldLogger: HeraldLogger;
  protected readonly startup: HeraldStartup;
  protected readonly connectTimeoutMs: number;
  protected readonly closeTimeoutMs: number;
  /** Route -> the pattern as the decorator declared it (checked at listen). */
  protected readonly declaredPatterns = new Map<string, unknown>();
  protected closing?: Promise<void>;
  /** The one place the lifecycle state changes (DESIGN.md "State"). */
  protected readonly state: StateMachine<HeraldLifecycleState>;
  /**
   * The logger to hand the hub or connections: it remembers their last
   * connection failure, which a connect timeout names as its cause.
   */
  protected readonly connectionLogger: CauseRecorder;
  /** Warnings repeated per message (e.g. requests nobody can answer): one line per cause per interval. */
  protected readonly warnings: WarningLimiter;
  /** Consumer spans around handlers, when OpenTelemetry is installed (loaded at listen). */
  private telemetry?: MessagingInstrumentation;

  constructor(options: HeraldServerOptions = {}) {
    super();
    const resolved = resolveHeraldServerOptions(new.target.name, options);
    this.heraldLogger = resolved.logger;
    this.startup = resolved.startup;
    this.connectTimeoutMs = resolved.connectTimeoutMs;
    this.closeTimeoutMs = resolved.closeTimeoutMs;
    this.warnings = new WarningLimiter(this.heraldLogger);
    this.initializeSerializer(resolved);
    this.initializeDeserializer(resolved);
    // A listener for 'error' so an unobserved error is logged, never thrown by EventEmitter.
    this.events.on('error', noop);
    ({ state: this.state, connectionLogger: this.connectionLogger } = heraldLifecycle(
      new.target.name,
      this.heraldLogger,
      this._status$,
      this.events,
    ));
  }

  /**
   * The lifecycle: `idle`, `connecting`, `connected`, `reconnecting`,
   * `disconnected` (final), each with the reason of a change caused by a
   * failure. Replays the current state to a new subscriber. The one way
   * status is reported; Nest's `status` carries the same states, without
   * reasons.
   */
  get status$(): Observable<StateChange<HeraldLifecycleState>> {
    return this.state.status$;
  }

  /** Connects, subscribes to `routes`, and starts delivering; resolves once connected. */
  protected abstract start(routes: readonly string[]): Promise<void>;
  /** Releases connections; called once by `close()`. */
  protected abstract stop(): Promise<void>;
  /** Checks that a (valid Nest) route can travel on this transport; throws InvalidPatternError. */
  protected abstract checkRoute(route: string, pattern: unknown): void;

  override addHandler(
    pattern: unknown,
    callback: MessageHandler,
    isEventHandler = false,
    extras: Record<string, unknown> = {},
  ): void {
    super.addHandler(pattern, callback, isEventHandler, extras);
    this.declaredPatterns.set(this.normalizePattern(pattern as string), pattern);
  }

  /**
   * Routes reaching the server are normalized already: an exact lookup
   * first spares Nest's JSON.parse attempt (which throws for every plain
   * string pattern) on each message.
   */
  override getHandlerByPattern(pattern: string): MessageHandler | null {
    return this.messageHandlers.get(pattern) ?? super.getHandlerByPattern(pattern);
  }

  /** The routes handled, once validated. */
  protected routes(): string[] {
    const routes: string[] = [];
    for (const [route, pattern] of this.declaredPatterns) {
      validatePattern(pattern, (value: never) => this.normalizePattern(value));
      this.checkRoute(route, pattern);
      routes.push(route);
    }
    return routes;
  }

  /**
   * Validates every pattern (a bad one fails `listen` with
   * `InvalidPatternError`), then starts: `fail-fast` calls back once
   * connected or with `ConnectTimeoutError` after `connectTimeoutMs`;
   * `degraded` calls back at once and connects in the background.
   */
  listen(callback: (error?: unknown, info?: unknown) => void): void {
    let routes: string[];
    try {
      routes = this.routes();
    } catch (error) {
      callback(error);
      return;
    }
    this.setStatus('connecting');
    const started = Promise.all([
      this.start(routes),
      autoloadTelemetry().then(() => {
        this.telemetry = currentInstrumentation()?.messaging(
          telemetrySystem(this.constructor.name),
          'server',
        );
      }),
    ]).then(noop);
    if (this.startup === 'degraded') {
      started.catch(error => {
        if (!this.closing) this.reportError(error as Error, 'start failed');
      });
      callback();
      return;
    }
    connectWithin(
      started,
      this.constructor.name,
      this.connectTimeoutMs,
      this.connectionLogger,
    ).then(
      () => callback(),
      async (error: unknown) => {
        started.catch(noop);
        this.setStatus('disconnected', describeError(error));
        await this.close().catch(noop);
        callback(error);
      },
    );
  }

  /** Stops intake, lets handlers in flight finish (bounded), releases connections. Idempotent. */
  async close(): Promise<void> {
    this.closing ??= this.stop().finally(() => {
      this.warnings.flush();
      this.setStatus('disconnected');
    });
    return this.closing;
  }

  /**
   * `reconnect` and `error` (see {@link HeraldMicroserviceEvents}).
   * `status` is a deprecated adapter fed from {@link status$}.
   */
  on<K extends keyof HeraldMicroserviceEvents>(
    event: K,
    callback: HeraldMicroserviceEvents[K],
  ): this {
    this.events.on(event as string, callback as (...args: unknown[]) => void);
    return this;
  }

  /**
   * Moves the state machine; a change reported by a connection after the
   * final `disconnected` is ignored (a hub or reader still winding down).
   */
  protected setStatus(status: HeraldMicroserviceStatus, reason?: string): void {
    // Once close() began, a connection closed on purpose is not a lost one.
    if (this.state.is('disconnected') || (this.closing && status !== 'disconnected')) return;
    this.state.setState(status, reason);
  }

  protected reportError(error: Error, what: string): void {
    this.heraldLogger.error(
      logLine('microservice', 'microservice-server-error', `${what}: ${describeError(error)}`, {
        server: this.constructor.name,
      }),
      error.stack,
    );
    this.events.emit('error', error);
  }

  /** The deserialized packet of a raw wire value (JSON already parsed). */
  protected deserialize(
    raw: unknown,
    route: string,
  ): HeraldIncomingPacket | Promise<HeraldIncomingPacket> {
    return this.deserializer.deserialize(raw, { channel: route }) as
      HeraldIncomingPacket | Promise<HeraldIncomingPacket>;
  }

  /**
   * Runs the event handlers of `route`. With `propagatesEventHandlerErrors`
   * the promise settles after the handler's result settled and rejects when
   * it ended in an error (the transport then does not acknowledge); without,
   * it is Nest's `handleEvent` (errors logged by Nest after the filters ran).
   */
  protected handleHeraldEvent(
    route: string,
    packet: HeraldIncomingPacket,
    context: Context,
  ): Promise<void> {
    const telemetry = this.telemetry;
    if (!telemetry) return this.runHeraldEvent(route, packet, context);
    return telemetry.process(route, packet.metadata, packet.id, () =>
      this.runHeraldEvent(route, packet, context),
    );
  }

  private async runHeraldEvent(
    route: string,
    packet: HeraldIncomingPacket,
    context: Context,
  ): Promise<void> {
    if (!this.propagatesEventHandlerErrors) {
      await this.handleEvent(route, packet, context);
      return;
    }
    const handler = this.getHandlerByPattern(route);
    if (!handler) {
      this.logger.error(
        logLine(
          'microservice',
          'microservice-no-event-handler',
          'There is no matching event handler defined in the remote service',
          { server: this.constructor.name, pattern: route },
        ),
      );
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const run = this.runWithProcessingHooks(context, async runEndHook => {
        try {
          const result: unknown = await handler(packet.data, context);
          if (isObservable(result)) await completion(result);
          runEndHook();
          resolve();
        } catch (error) {
          reject(error);
          throw error;
        }
      }) as unknown;
      // The start hook's promise (when it returns one) rejects with the same error.
      if (run instanceof Promise) run.catch(noop);
    });
  }

  /**
   * Answers a request: the reply packets (`response` values, then
   * `isDisposed`, or `err`) go to `respond`; resolves once the last one was
   * handed over (so the transport may acknowledge the request then).
   */
  protected handleHeraldRequest(
    route: string,
    packet: HeraldIncomingPacket & { id: string },
    context: Context,
    respond: (reply: WritePacket & { id: string }) => Promise<unknown>,
  ): Promise<void> {
    const telemetry = this.telemetry;
    if (!telemetry) return this.runHeraldRequest(route, packet, context, respond);
    return telemetry.process(route, packet.metadata, packet.id, () =>
      this.runHeraldRequest(route, packet, context, respond),
    );
  }

  private runHeraldRequest(
    route: string,
    packet: HeraldIncomingPacket & { id: string },
    context: Context,
    respond: (reply: WritePacket & { id: string }) => Promise<unknown>,
  ): Promise<void> {
    const handler = this.getHandlerByPattern(route);
    if (!handler) {
      return respond({ id: packet.id, status: 'error', err: NO_MESSAGE_HANDLER }).then(noop);
    }
    return new Promise<void>(resolve => {
      const reply = async (data: WritePacket): Promise<void> => {
        try {
          await respond({ ...data, id: packet.id });
        } finally {
          if (data.isDisposed || data.err !== undefined) resolve();
        }
      };
      const run = this.handleRequest(
        context,
        async () => this.transformToObservable(await handler(packet.data, context)),
        reply,
      ) as unknown;
      if (run instanceof Promise) {
        run.catch(async (error: unknown) => {
          // produce() itself threw before a stream existed: answer with the error.
          await reply({ err: errorReply(error), isDisposed: true }).catch(noop);
        });
      }
    });
  }

  /** The reply address a client put into a request id (`<address>#<random>`), or undefined. */
  protected replyAddressOf(id: string): string | undefined {
    const at = id.lastIndexOf(REPLY_ADDRESS_SEPARATOR);
    return at > 0 ? id.slice(0, at) : undefined;
  }

  /** The serialized reply, JSON-encodable. */
  protected serializeReply(reply: WritePacket & { id: string }): unknown {
    return this.serializer.serialize(reply);
  }
}

/** An error as it can travel in a reply (Nest replies with plain objects). */
export function errorReply(error: unknown): unknown {
  if (isError(error)) return { status: 'error', name: error.name, message: error.message };
  return error;
}

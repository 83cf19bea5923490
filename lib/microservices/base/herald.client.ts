import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { ClientProxy, type ReadPacket, type WritePacket } from '@nestjs/microservices';
import { InvalidMessageException } from '@nestjs/microservices/errors/invalid-message.exception.js';
import { from, throwError, type Observable } from 'rxjs';
import { describeError } from '../../common/describe-error.js';
import { TransportClosedError } from '../../common/errors.js';
import { currentInstrumentation } from '../../common/instrumentation.js';
import type { HeraldLogger } from '../../common/logger.js';
import type { StateChange, StateMachine } from '../../common/state-machine.js';
import { REPLY_ADDRESS_SEPARATOR } from '../microservice.constants.js';
import { ReplyTooLargeError, RequestTimeoutError } from '../microservice.errors.js';
import {
  HeraldRecord,
  type HeraldClientOptions,
  type HeraldMicroserviceEvents,
  type HeraldMicroserviceStatus,
} from '../microservice.interface.js';
import type { MessagingInstrumentation } from '../../interfaces/instrumentation.interface.js';
import { autoloadTelemetry } from '../../otel/otel.loader.js';
import { resolveHeraldClientOptions } from './herald.options.js';
import { telemetrySystem } from './pattern.utils.js';
import {
  connectWithin,
  heraldLifecycle,
  type CauseRecorder,
  type HeraldLifecycleState,
} from './herald.state.js';
import { validatePattern } from './pattern.utils.js';
import type {
  ClientData,
  ClientEventCatalog,
  ClientMessageCatalog,
  ClientPattern,
  ReplyOf,
  RequestData,
  UntypedClientEvents,
  UntypedClientMessages,
  UntypedPattern,
} from '../microservice.catalog.js';

/** A request on the wire: Nest's packet with its correlation id. */
export interface HeraldOutgoingRequest extends ReadPacket {
  readonly id: string;
}

interface PendingRequest {
  readonly callback: (packet: WritePacket) => void;
  timer?: NodeJS.Timeout;
}

const noop = (): void => undefined;

/**
 * The part of {@link PgNotifyClient} and {@link RedisStreamsClient} that has
 * nothing to do with the wire: one shared `connect()` (with a timeout),
 * request bookkeeping with a correlation id that names the reply address,
 * a per-request timeout, {@link HeraldRecord} options, status and `on()`,
 * and the error replies the servers send turned back into error classes.
 *
 * `Events` and `Messages` type `emit` and `send` (see
 * `microservice.catalog.ts`): with them, only declared patterns and their
 * data compile, and `send` answers the declared reply type; without them
 * the client is as untyped as Nest's `ClientProxy`. Typed or not, it is a
 * `ClientProxy` (`ClientsModule`'s `customClass` takes it).
 * @publicApi
 */
// Status is `string` in the base type so the class fits `ClientsModule`'s
// `customClass: Type<ClientProxy>`; `status` is narrowed below.
export abstract class HeraldClient<
  Events extends ClientEventCatalog<Events> = UntypedClientEvents,
  Messages extends ClientMessageCatalog<Messages> = UntypedClientMessages,
> extends ClientProxy<HeraldMicroserviceEvents, string> {
  protected readonly events = new EventEmitter();
  protected readonly heraldLogger: HeraldLogger;
  protected readonly requestTimeoutMs: number;
  protected readonly connectTimeoutMs: number;
  /** Correlation id -> the waiting request. */
  protected readonly pending = new Map<string, PendingRequest>();
  /** Validated string patterns (the common case), so each emit skips validation. */
  private readonly stringRoutes = new Map<string, string>();
  private readonly recordOptions = new WeakMap<ReadPacket, { timeoutMs?: number }>();
  private connecting?: Promise<void>;
  private connected = false;
  /** Producer spans and trace context in packet metadata, when OpenTelemetry is installed (loaded at connect). */
  private telemetry?: MessagingInstrumentation;
  protected closed = false;
  private closing?: Promise<void>;
  /** The one place the lifecycle state changes (DESIGN.md "State"). */
  protected readonly state: StateMachine<HeraldLifecycleState>;
  /**
   * The logger to hand the hub or connections: it remembers their last
   * connection failure, which a connect timeout names as its cause.
   */
  protected readonly connectionLogger: CauseRecorder;

  constructor(options: HeraldClientOptions = {}) {
    super();
    const resolved = resolveHeraldClientOptions(new.target.name, options);
    this.heraldLogger = resolved.logger;
    this.requestTimeoutMs = resolved.requestTimeoutMs;
    this.connectTimeoutMs = resolved.connectTimeoutMs;
    this.initializeSerializer(resolved);
    this.initializeDeserializer(resolved);
    this.events.on('error', noop);
    ({ state: this.state, connectionLogger: this.connectionLogger } = heraldLifecycle(
      new.target.name,
      this.heraldLogger,
      this._status$,
      this.events,
    ));
  }

  /**
   * The lifecycle: `idle` (before the first `connect()`), `connecting`
   * (with the cause once a connect attempt timed out), `connected`,
   * `reconnecting`, `disconnected` (final, after `close()`). Replays the
   * current state to a new subscriber. The one way status is reported;
   * Nest's `status` carries the same states, without reasons.
   */
  get status$(): Observable<StateChange<HeraldLifecycleState>> {
    return this.state.status$;
  }

  /** Where replies to this client go (a channel or a stream); part of every request id. */
  protected abstract readonly replyAddress: string;
  /** Connects and listens for replies. */
  protected abstract open(): Promise<void>;
  /** Releases connections and the reply address. */
  protected abstract shut(): Promise<void>;
  /** Sends a serialized request to the route's responders. */
  protected abstract sendRequest(route: string, packet: unknown): Promise<void>;
  /** Sends a serialized event; resolves (to undefined) once the transport took it. */
  protected abstract sendEvent(route: string, packet: unknown): Promise<unknown>;
  /** Checks a route can travel on this transport (throws InvalidPatternError). */
  protected abstract checkRoute(route: string, pattern: unknown): void;

  /**
   * Connects (once; concurrent calls share it). Rejects with
   * `ConnectTimeoutError` after `connectTimeoutMs` (a later call tries
   * again) and with `TransportClosedError` after `close()`.
   */
  connect(): Promise<void> {
    if (this.closed) return Promise.reject(new TransportClosedError('client is closed'));
    if (!this.connecting) {
      if (this.state.is('idle')) this.setStatus('connecting');
      let attempt: Promise<void>;
      try {
        // Telemetry loads beside the connection (a dynamic import), never before it.
        attempt = Promise.all([
          this.open(),
          autoloadTelemetry().then(() => {
            this.telemetry = currentInstrumentation()?.messaging(
              telemetrySystem(this.constructor.name),
              'client',
            );
          }),
        ]).then(noop);
      } catch (error) {
        attempt = Promise.reject(error as Error);
      }
      attempt.catch(noop);
      const connecting = connectWithin(
        attempt,
        this.constructor.name,
        this.connectTimeoutMs,
        this.connectionLogger,
      );
      this.connecting = connecting;
      connecting.then(
        () => (this.connected = !this.closed),
        (error: unknown) => {
          // Every send/emit waiting for this attempt rejects with the same
          // error; the next one tries again. The state says why meanwhile.
          this.connecting = undefined;
          if (this.state.is('connecting')) this.setStatus('connecting', describeError(error));
        },
      );
      return connecting;
    }
    return this.connecting;
  }

  /**
   * Errors every request still waiting with `TransportClosedError`, stops
   * listening for replies (the reply channel or stream is removed) and
   * releases connections. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      this.connected = false;
      const error = new TransportClosedError('client closed before the reply came');
      for (const [id, request] of [...this.pending]) {
        this.settle(id);
        request.callback({ err: error, isDisposed: true });
      }
      try {
        await this.shut();
      } finally {
        this.setStatus('disconnected');
      }
    })();
    return this.closing;
  }

  /** `connecting`, `connected`, `reconnecting`, `disconnected` (after `close()`). */
  override get status(): Observable<HeraldMicroserviceStatus> {
    return super.status as Observable<HeraldMicroserviceStatus>;
  }

  /**
   * `reconnect` and `error` (see {@link HeraldMicroserviceEvents}).
   * `status` is a deprecated adapter fed from {@link status$}.
   */
  override on<K extends keyof HeraldMicroserviceEvents>(
    event: K,
    callback: HeraldMicroserviceEvents[K],
  ): void {
    this.events.on(event as string, callback as (...args: unknown[]) => void);
  }

  /**
   * Moves the state machine; a change reported by a connection once
   * `close()` began, other than the final `disconnected`, is ignored: a
   * connection closed on purpose is not a lost one (no false WARN).
   */
  protected setStatus(status: HeraldMicroserviceStatus, reason?: string): void {
    if (this.state.is('disconnected') || (this.closed && status !== 'disconnected')) return;
    this.state.setState(status, reason);
  }

  /**
   * Nest's `emit`, with its semantics (hot: sent even if nobody subscribes;
   * emits once and completes when the transport took the event; errors with
   * `InvalidMessageException` for a null or undefined pattern or data) on one
   * promise instead of four Observables per event.
   *
   * Untyped client: any pattern and data. Typed (`Events`): a declared
   * pattern and its data (or a `HeraldRecord` of it).
   */
  override emit<TResult = unknown, TInput = unknown>(
    pattern: UntypedPattern<Events>,
    data: TInput,
  ): Observable<TResult>;
  override emit<P extends ClientPattern<Events>>(
    pattern: P,
    data: ClientData<Events[P]>,
  ): Observable<void>;
  override emit(pattern: unknown, data: unknown): Observable<unknown> {
    if (pattern === null || pattern === undefined || data === null || data === undefined) {
      return throwError(() => new InvalidMessageException());
    }
    let sent: Promise<unknown>;
    if (this.connected) {
      // The common case, without an async hop: validated, serialized and queued now.
      try {
        sent = this.dispatchEvent(this.createPacket(pattern, data));
      } catch (error) {
        sent = Promise.reject(error);
      }
    } else {
      sent = this.connect().then(() => this.dispatchEvent(this.createPacket(pattern, data)));
    }
    sent.catch(noop); // hot: the error reaches subscribers only, never an unhandled rejection
    return from(sent);
  }

  /**
   * Nest's `send` (cold: sent on subscribe; emits the reply and completes).
   * Untyped client: any pattern and data, the reply typed by `TResult`
   * (Nest's default `any`, so untyped code compiles as before). Typed
   * (`Messages`): a declared pattern and its data (or a `HeraldRecord` of
   * it), and an Observable of its declared reply.
   */
  override send<
    // Nest's own defaults: untyped code that reads the reply compiles unchanged.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    TResult = any,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    TInput = any,
  >(pattern: UntypedPattern<Messages>, data: TInput): Observable<TResult>;
  override send<P extends ClientPattern<Messages>>(
    pattern: P,
    data: ClientData<RequestData<Messages, P>>,
  ): Observable<ReplyOf<Messages, P>>;
  override send(pattern: unknown, data: unknown): Observable<unknown> {
    return super.send(pattern, data);
  }

  /** Unwraps {@link HeraldRecord}: its metadata joins the packet's, its timeout is kept for `publish`. */
  protected override createPacket<T>(pattern: unknown, data: T): ReadPacket {
    if (!(data instanceof HeraldRecord)) return super.createPacket(pattern, data);
    const record = data as HeraldRecord;
    const packet = super.createPacket(pattern, record.data);
    if (record.options.metadata) {
      packet.metadata = { ...packet.metadata, ...record.options.metadata };
    }
    this.recordOptions.set(packet, { timeoutMs: record.options.timeoutMs });
    return packet;
  }

  /** The route of a pattern, validated as servers validate theirs at listen. */
  protected routeOf(pattern: unknown): string {
    if (typeof pattern === 'string') {
      const known = this.stringRoutes.get(pattern);
      if (known !== undefined) return known;
    }
    const route = validatePattern(pattern, (value: never) => this.normalizePattern(value));
    this.checkRoute(route, pattern);
    if (typeof pattern === 'string' && this.stringRoutes.size < 1024)
      this.stringRoutes.set(pattern, route);
    return route;
  }

  protected override assignPacketId(packet: ReadPacket): ReadPacket & { id: string } {
    return Object.assign(packet, {
      id: `${this.replyAddress}${REPLY_ADDRESS_SEPARATOR}${randomUUID()}`,
    });
  }

  protected publish(partial: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    let id: string | undefined;
    try {
      const route = this.routeOf(partial.pattern);
      const timeoutMs = this.recordOptions.get(partial)?.timeoutMs ?? this.requestTimeoutMs;
      const packet = this.assignPacketId(partial);
      const requestId = packet.id;
      id = requestId;
      const request: PendingRequest = { callback };
      this.pending.set(requestId, request);
      if (timeoutMs > 0) {
        request.timer = setTimeout(() => {
          if (!this.settle(requestId)) return;
          callback({ err: new RequestTimeoutError(route, timeoutMs), isDisposed: true });
        }, timeoutMs);
        request.timer.unref?.();
      }
      const send = (metadata: Readonly<Record<string, string>> | undefined): Promise<void> => {
        if (metadata) packet.metadata = { ...metadata };
        return this.sendRequest(route, this.serializer.serialize(packet) as unknown);
      };
      const telemetry = this.telemetry;
      const sent = telemetry ? telemetry.send(route, packet.metadata, send) : send(undefined);
      sent.catch((error: unknown) => {
        if (this.settle(requestId)) callback({ err: error, isDisposed: true });
      });
    } catch (error) {
      if (id !== undefined) this.settle(id);
      callback({ err: error, isDisposed: true });
      return noop;
    }
    // Unsubscribing (or the request settling) forgets the request: a late reply is dropped.
    const requestId = id;
    return () => void this.settle(requestId);
  }

  /** Resolves (to undefined) once the transport took the event; may throw at the call for bad input. */
  protected dispatchEvent<T = unknown>(packet: ReadPacket): Promise<T> {
    const route = this.routeOf(packet.pattern);
    const telemetry = this.telemetry;
    if (!telemetry) {
      return this.sendEvent(route, this.serializer.serialize(packet) as unknown) as Promise<T>;
    }
    return telemetry.send(route, packet.metadata, metadata => {
      packet.metadata = { ...metadata };
      return this.sendEvent(route, this.serializer.serialize(packet) as unknown);
    }) as Promise<T>;
  }

  /** Forgets a request; true if it was still waiting. */
  private settle(id: string): boolean {
    const request = this.pending.get(id);
    if (!request) return false;
    clearTimeout(request.timer);
    this.pending.delete(id);
    return true;
  }

  /** Hands a reply (the parsed wire value) to its request. */
  protected async receiveReply(raw: unknown): Promise<void> {
    let packet: WritePacket & { id?: string };
    try {
      packet = (await this.deserializer.deserialize(raw)) as WritePacket & { id?: string };
    } catch (error) {
      this.events.emit('error', error);
      return;
    }
    const id = packet.id;
    if (typeof id !== 'string') return;
    const request = this.pending.get(id);
    if (!request) return; // timed out, unsubscribed, or answered already
    const last = packet.isDisposed === true || packet.err !== undefined;
    if (last) this.settle(id);
    request.callback(packet);
  }

  /** Turns the error replies of herald servers back into their classes. */
  protected override serializeError(err: unknown): unknown {
    if (
      err &&
      typeof err === 'object' &&
      (err as { name?: unknown }).name === ReplyTooLargeError.name
    ) {
      const { size, limit } = err as { size?: number; limit?: number };
      return new ReplyTooLargeError(Number(size), Number(limit));
    }
    return err;
  }
}

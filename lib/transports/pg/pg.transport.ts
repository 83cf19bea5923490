// The EventsModule transport over a PgHub. About 430 lines, one role: the
// Transport port (connect, the publish paths: plain, in your transaction,
// durable; the delivery of received envelopes with their unique claims;
// stats, close). Durable mode's own parts are in pg.outbox*.ts.
import type { Observable, Subscription } from 'rxjs';
import { describeError, asError } from '../../common/describe-error.js';
import { PayloadTooLargeError, QueueFullError, TransportClosedError } from '../../common/errors.js';
import { logLine } from '../../common/log-line.js';
import type { HeraldLogger } from '../../common/logger.js';
import { StateMachine } from '../../common/state-machine.js';
import { WarningLimiter } from '../../common/warning-limiter.js';
import type { Envelope } from '../../interfaces/envelope.interface.js';
import type {
  Delivery,
  PublishResult,
  Settlement,
  Transport,
  TransportContext,
  TransportFeatures,
  TransportState,
  TransportStatus,
} from '../../interfaces/transport.interface.js';
import type { PgHubAdvisoryEvent, PgHubRawEvent } from './pg.advisory.js';
import { PG_HUB_DEFAULTS, PG_NOTIFY_MAX_PAYLOAD } from './pg.constants.js';
import type { PgConsumer } from './pg.consumer.js';
import { PgEnvelopeCodec } from './pg.envelope-codec.js';
import type { PgPayload } from './pg.packed-payloads.js';
import { PgHub, type PgHubStatus } from './pg.hub.js';
import { PgOutbox } from './pg.outbox.js';
import type { PgOutboxCleanupResult } from './pg.outbox-cleanup.js';
import { resolvePgTransportOptions, type PgTransportOptions } from './pg-transport.options.js';
import { PgUniqueClaims } from './pg.unique-claims.js';

export { topLevelData } from './pg.envelope-codec.js';

const ACCEPTED: PublishResult = Object.freeze({ ok: true });
/**
 * How the transport queues its payloads: each carries its own id (never
 * folded), and each is pure ASCII ({@link PgEnvelopeCodec.encode}).
 */
const PAYLOADS_OPTIONS = Object.freeze({ distinct: true, ascii: true });

const PLAIN_FEATURES: TransportFeatures = Object.freeze({
  reach: 'network',
  guarantee: 'at-most-once',
  ordering: 'per-sender',
  uniqueScope: 'network',
  maxPayloadBytes: PG_NOTIFY_MAX_PAYLOAD,
  redelivers: false,
  loopback: true,
  persistent: false,
  postsInTransaction: true,
});

const DURABLE_FEATURES: TransportFeatures = Object.freeze({
  ...PLAIN_FEATURES,
  guarantee: 'at-least-once',
  redelivers: true,
  persistent: true,
});

const TRANSPORT_TRANSITIONS: { readonly [S in TransportState]: readonly TransportState[] } = {
  connecting: ['connected', 'reconnecting', 'disconnected', 'closed'],
  connected: ['reconnecting', 'disconnected', 'closed'],
  reconnecting: ['connected', 'disconnected', 'closed'],
  disconnected: ['connected', 'reconnecting', 'closed'],
  closed: [],
};

/**
 * The EventsModule transport over PostgreSQL LISTEN/NOTIFY, on a
 * {@link PgHub}: every instance LISTENing to the channel receives every post
 * (the sender too), at most once, in each sender's order, and only once the
 * sender's notify committed. The envelope travels inside the pg-hub value
 * ({@link PgEnvelopeCodec}), so a Go or Node pg-hub service can read it;
 * plain pg-hub events (from triggers or other services) on the extra
 * `topics` reach handlers too.
 *
 * `unique`: every instance receives the post; each claims its key
 * ({@link PgUniqueClaims}) and only the winner runs it; repeats within the
 * TTL find the claim and are dropped. A unique event is run once its claim
 * is won, so it may be run after a later plain event of its sender.
 *
 * `durable: true` ({@link PgOutbox}): at-least-once instead. Each post is a
 * row of an outbox table written in the transaction of its (empty) NOTIFY;
 * each listener reads the rows from its consumer's cursor under the
 * snapshot horizon, so nothing committed is skipped or missed across
 * reconnects and restarts; nacks are retried, then dead-lettered.
 * @publicApi
 */
export class PgTransport implements Transport {
  readonly name = 'pg';
  readonly features: TransportFeatures;
  /** The hub: shared with other parts (a microservice server) when given. */
  readonly hub: PgHub;
  /** The channel herald envelopes travel on. */
  readonly channel: string;
  /** Extra channels of plain pg-hub events. */
  readonly topics: readonly string[];
  readonly status$: Observable<TransportStatus>;
  /** Durable mode's parts (`durable: true`), else undefined. */
  readonly outbox?: PgOutbox;
  private readonly machine: StateMachine<TransportState>;
  private readonly ownsHub: boolean;
  private readonly codec: PgEnvelopeCodec;
  private readonly claims: PgUniqueClaims;
  private readonly maxPendingClaims: number;
  private readonly stopTimeoutMs: number;
  /** Unique events whose claim has not settled yet. */
  private claiming = 0;
  private warnings?: WarningLimiter;
  private context?: TransportContext;
  private consumer?: PgConsumer;
  private hubStatus?: Subscription;
  private closing?: Promise<void>;
  private intake = false;
  private ready = false;
  private readonly counters = {
    published: 0,
    publishFailed: 0,
    delivered: 0,
    duplicates: 0,
    claimErrors: 0,
    claimsDropped: 0,
    acked: 0,
    nacked: 0,
  };
  private readonly settle = (settlement: Settlement): void => {
    if (settlement.outcome === 'ack') this.counters.acked++;
    else this.counters.nacked++;
  };
  /** Forwards to the bus's logger once connected (the hub is made before). */
  private readonly hubLogger: HeraldLogger = {
    log: message => this.context?.logger.log(message),
    warn: message => this.context?.logger.warn(message),
    error: (message, stack) => this.context?.logger.error(message, stack),
    debug: message => this.context?.logger.debug?.(message),
  };

  /** Throws `InvalidOptionsError` naming a bad or unknown option. */
  constructor(options: PgTransportOptions = {}) {
    const resolved = resolvePgTransportOptions(options);
    this.channel = resolved.channel;
    this.topics = resolved.topics;
    this.maxPendingClaims = resolved.maxPendingClaims;
    if (resolved.hub) {
      this.hub = resolved.hub;
      this.ownsHub = false;
    } else {
      // Under EventsModule no logger is given: the hub logs through the
      // bus's (known at connect), so a lost LISTEN connection is never silent.
      this.hub = new PgHub({
        name: 'herald',
        ...resolved.hubOptions,
        logger: resolved.logger ?? this.hubLogger,
      });
      this.ownsHub = true;
    }
    this.machine = new StateMachine<TransportState>(
      'pg transport',
      'connecting',
      TRANSPORT_TRANSITIONS,
      this.hubLogger,
    );
    this.status$ = this.machine.status$;
    this.codec = new PgEnvelopeCodec(
      () => this.context?.logger,
      () => this.context?.clock,
    );
    this.claims = new PgUniqueClaims({
      pool: this.hub.pool,
      table: resolved.uniqueTable,
      purgeMs: resolved.uniquePurgeMs,
      timeoutMs: resolved.claimTimeoutMs,
      logger: () => this.context?.logger,
    });
    this.features = resolved.durable ? DURABLE_FEATURES : PLAIN_FEATURES;
    if (resolved.durable) {
      const hubOptions = resolved.hubOptions;
      this.outbox = new PgOutbox(
        {
          hub: this.hub,
          channel: this.channel,
          codec: this.codec,
          claims: this.claims,
          batchSize: hubOptions.batchSize ?? PG_HUB_DEFAULTS.batchSize,
          maxQueue: hubOptions.maxQueue ?? PG_HUB_DEFAULTS.maxQueue,
          reconnectMs: hubOptions.reconnectMs ?? PG_HUB_DEFAULTS.reconnectMs,
        },
        resolved.durable,
      );
    }
    this.stopTimeoutMs = resolved.hubOptions.stopTimeoutMs ?? PG_HUB_DEFAULTS.stopTimeoutMs;
  }

  /** Follows the hub's status once connect() resolved (its LISTENs ran). */
  private readonly onHubStatus = ({ state, reason }: PgHubStatus): void => {
    if (this.closing || !this.ready) return;
    switch (state) {
      case 'connected':
        this.machine.setState('connected');
        break;
      case 'reconnecting':
        this.machine.setState('reconnecting', reason);
        break;
      case 'stopping':
      case 'stopped':
        this.machine.setState('disconnected', 'pg hub stopped');
        break;
    }
  };

  async connect(context: TransportContext): Promise<void> {
    if (this.closing) throw new TransportClosedError();
    this.context = context;
    this.warnings = new WarningLimiter(context.logger, 10_000, context.clock);
    this.intake = true;
    this.hubStatus = this.hub.status$.subscribe(this.onHubStatus);
    this.consumer = this.hub.rawConsumer(this.onEvent);
    // Resolves once every channel's LISTEN has run, so nothing posted after connect is missed.
    await Promise.all([this.hub.start(), this.consumer.subscribe(this.channel, ...this.topics)]);
    // Durable: the tables, the consumer's cursor, then the catch-up read.
    if (this.outbox) await this.outbox.start(context);
    this.ready = true;
    if (!this.closing)
      this.machine.setState(this.hub.state === 'connected' ? 'connected' : 'reconnecting');
  }

  async publish(batch: readonly Envelope[]): Promise<readonly PublishResult[]> {
    if (this.closing || !this.context) {
      const error = new TransportClosedError(
        this.closing ? undefined : 'transport is not connected',
      );
      return batch.map(() => ({ ok: false, error }));
    }
    if (batch.some(envelope => envelope.transportOptions?.tx !== undefined))
      return this.publishMixed(batch);
    if (this.outbox) {
      const texts = new Array<string>(batch.length);
      for (let i = 0; i < batch.length; i++) texts[i] = this.codec.encode(batch[i]);
      return this.results(await this.writeDurable(texts));
    }
    // In parts (head, data): the notifier writes them into the statement
    // part by part, never copying the data's text (see encodeParts).
    const payloads = new Array<PgPayload>(batch.length);
    for (let i = 0; i < batch.length; i++) payloads[i] = this.codec.encodeParts(batch[i]);
    // Every envelope has its own id: PostgreSQL can never fold two of them;
    // and the codec writes pure ASCII (the size check need not measure).
    const outcomes = await this.hub.notifyPayloads(this.channel, payloads, PAYLOADS_OPTIONS);
    return this.results(outcomes);
  }

  /** Durable: each payload an outbox row (too large ones refused first, as on the NOTIFY path). */
  private async writeDurable(payloads: readonly string[]): Promise<(boolean | Error)[]> {
    const outcomes = new Array<boolean | Error>(payloads.length);
    const fit: string[] = [];
    const at: number[] = [];
    for (let i = 0; i < payloads.length; i++) {
      const size = Buffer.byteLength(payloads[i]);
      if (size > this.hub.payloadLimit)
        outcomes[i] = new PayloadTooLargeError(size, this.hub.payloadLimit);
      else {
        fit.push(payloads[i]);
        at.push(i);
      }
    }
    const written = fit.length > 0 ? await this.outbox!.write(fit) : [];
    for (let i = 0; i < at.length; i++) outcomes[at[i]] = written[i];
    return outcomes;
  }

  /**
   * A batch with posts that name a transaction: each of those is notified
   * at once on the poster's client (so PostgreSQL delivers it at commit, and
   * never after a rollback), the others queued as usual.
   */
  private async publishMixed(batch: readonly Envelope[]): Promise<readonly PublishResult[]> {
    const outcomes = await Promise.all(
      batch.map(envelope => {
        const payload = this.codec.encode(envelope);
        const tx = envelope.transportOptions?.tx;
        if (this.outbox) {
          if (tx === undefined) return this.writeDurable([payload]).then(o => o[0]);
          const size = Buffer.byteLength(payload);
          if (size > this.hub.payloadLimit)
            return new PayloadTooLargeError(size, this.hub.payloadLimit);
          return this.outbox.writeOn(tx, payload).then(
            () => true,
            (error: unknown) => asError(error),
          );
        }
        if (tx === undefined)
          return this.hub.notifyPayloads(this.channel, [payload], PAYLOADS_OPTIONS).then(o => o[0]);
        try {
          return this.hub
            .notifyPayload(this.channel, payload, { client: tx })
            .catch((error: unknown) => asError(error));
        } catch (error) {
          return error as Error;
        }
      }),
    );
    return this.results(outcomes);
  }

  private results(outcomes: readonly (boolean | Error)[]): PublishResult[] {
    const results: PublishResult[] = outcomes.map(outcome =>
      outcome === true
        ? ACCEPTED
        : {
            ok: false,
            error:
              outcome === false
                ? new TransportClosedError('pg hub stopped before the event was sent')
                : outcome,
          },
    );
    for (const result of results) {
      if (result.ok) this.counters.published++;
      else this.counters.publishFailed++;
    }
    return results;
  }

  /** The pg-hub payload of an envelope (see {@link PgEnvelopeCodec.encode}). */
  encode(envelope: Envelope): string {
    return this.codec.encode(envelope);
  }

  /** A received notification as an envelope (see {@link PgEnvelopeCodec.decode}). */
  decode(event: PgHubRawEvent): Envelope | undefined {
    return this.codec.decode(event);
  }

  /**
   * Delivers a received envelope at once, or, for a `unique` one, once its
   * claim is won. Claims never hold back other events. Waiting claims are
   * bounded by `maxPendingClaims`: past it a unique event is dropped,
   * counted (`claimsDropped`) and logged, as LISTEN cannot be slowed down.
   */
  private readonly onEvent = (event: PgHubRawEvent | PgHubAdvisoryEvent): void => {
    if (this.outbox) {
      // Durable: a NOTIFY on the channel only wakes the reader, as does a
      // (re)connect of the LISTEN connection (what was committed meanwhile).
      if (event.topic === this.channel) return this.outbox.wake();
      if (event.topic === null) {
        const action = event.value.action;
        if (action === 'connect' || action === 'reconnect') this.outbox.wake();
        return;
      }
    }
    if (event.topic === null || !this.intake) return;
    const envelope = this.codec.decode(event);
    if (envelope === undefined) return;
    const unique = envelope.unique;
    if (unique === undefined) {
      this.deliver(envelope);
      return;
    }
    const named = `${envelope.source}/${envelope.event} (id ${envelope.id}, key ${unique})`;
    const fields = { source: envelope.source, event: envelope.event, id: envelope.id, unique };
    if (this.claiming >= this.maxPendingClaims) {
      this.counters.claimsDropped++;
      const error = new QueueFullError('pg unique claims', this.maxPendingClaims);
      this.warnings?.warn(
        'unique-claims-full',
        logLine(
          'pg',
          'unique-claims-full',
          `dropped unique event ${named}: ${error.message}`,
          fields,
        ),
      );
      return;
    }
    this.claiming++;
    const ttlMs = this.context?.unique.ttlMs ?? 2000;
    this.claims.claim(`${this.channel}:${unique}`, envelope.id, ttlMs).then(
      won => {
        this.claiming--;
        if (!won) {
          this.counters.duplicates++;
          this.context?.logger.debug?.(`pg transport: unique event ${named} is a duplicate`);
        } else if (this.intake) this.deliver(envelope);
      },
      error => {
        this.claiming--;
        // At most once: without a claim nobody can tell who runs it; drop it.
        this.counters.claimErrors++;
        this.warnings?.error(
          'unique-claim-failed',
          logLine(
            'pg',
            'unique-claim-failed',
            `cannot claim unique event ${named}, dropped: ${describeError(error)}`,
            fields,
          ),
        );
      },
    );
  };

  private deliver(envelope: Envelope): void {
    this.counters.delivered++;
    const delivery: Delivery = { envelope, attempt: 1, settle: this.settle };
    this.context?.deliver(delivery);
  }

  async stopIntake(): Promise<void> {
    if (!this.intake) return;
    this.intake = false;
    this.outbox?.stopIntake();
    this.consumer?.close();
  }

  /**
   * Durable mode: runs the retention job once now (it also runs every
   * `durable.cleanupIntervalMs`). Rejects when not durable.
   */
  cleanupOutbox(): Promise<PgOutboxCleanupResult> {
    if (!this.outbox)
      return Promise.reject(new TransportClosedError('the pg transport is not durable'));
    return this.outbox.runCleanup();
  }

  stats(): Readonly<Record<string, number>> {
    return {
      ...this.counters,
      ...this.codec.counters,
      pendingClaims: this.claiming,
      ...this.outbox?.stats(),
      ...this.hub.stats(),
    };
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await this.stopIntake();
    await this.outbox
      ?.close(this.stopTimeoutMs)
      .catch(error =>
        this.context?.logger.warn(
          logLine('pg', 'outbox-close-failed', describeError(error), { channel: this.channel }),
        ),
      );
    this.warnings?.flush();
    this.hubStatus?.unsubscribe();
    if (this.ownsHub) await this.hub.stop({ wait: true });
    this.machine.setState('closed');
    this.machine.complete();
    this.context = undefined;
  }
}

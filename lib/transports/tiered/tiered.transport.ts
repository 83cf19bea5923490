import type { Observable } from 'rxjs';
import { describeError } from '../../common/describe-error.js';
import { TransportClosedError } from '../../common/errors.js';
import { logLine } from '../../common/log-line.js';
import { WarningLimiter } from '../../common/warning-limiter.js';
import type { Envelope } from '../../interfaces/envelope.interface.js';
import type {
  Delivery,
  PublishResult,
  Transport,
  TransportContext,
  TransportFeatures,
  TransportStatus,
} from '../../interfaces/transport.interface.js';
import { TurnBatch } from './tiered.batch.js';

/*
 * Tiered fan-out: the workers of one host share one network subscription.
 * Every process runs the host transport (ipc); the one that hosts the ipc
 * broker also runs the uplink (redis): it relays the host's posts to the
 * network once, and reads the network once for the host, posting what
 * other hosts sent into the host transport. The two transports are given
 * (lib/transports/create-tiered.ts builds them): this folder imports
 * neither.
 */

/** Set on an envelope relayed to the network: the host it was posted on ('' = not posted through a tier). */
export const TIER_HOST_HEADER = 'x-herald-host';
/** Carries a `unique` key across the host transport on its way to the network (never run on the host). */
export const TIER_UNIQUE_HEADER = 'x-herald-unique';

/** The host transport: a Transport that says whether this process hosts the host's broker now. */
export interface HostTier extends Transport {
  /** True once this process hosts the broker (it won an election, or it is pinned to). */
  readonly isBroker: boolean;
}

/** What a {@link TieredTransport} is made of. */
export interface TieredTransportParts {
  /** The host transport (ipc), connected in every process. */
  readonly host: HostTier;
  /**
   * Builds the network transport (redis, read through the host's group and
   * consumer): called in the broker's process only, when it becomes the
   * broker, and again after a failed connect.
   */
  readonly uplink: () => Transport;
  /** This host's name (relayed envelopes carry it; the uplink skips its own). */
  readonly hostName: string;
  /** Host posts each process keeps to relay again if it is elected. */
  readonly relayMemory: number;
  /** Pause before an uplink that failed to connect is tried again. @default 1000 */
  readonly retryMs?: number;
}

/** Appended to a unique post's id while it crosses the host transport on its way out. */
const MARKER = ':to-network';

/** Kept host posts relayed again per uplink publish after an election. */
const RELAY_AGAIN_SLICE = 500;

/** Ids of network entries already posted into the host transport: two generations of sets. */
const SEEN_BOUND = 65_536;

/**
 * The workers of one host share one network subscription (Kong's worker
 * events inside a node, a cluster channel between nodes): every process
 * posts and receives through the host transport (ipc); the process hosting
 * the host's broker relays each host post to the network once and posts
 * each event from another host into the host transport once. `unique` runs
 * once across every host. Build it with `createTieredTransport` or
 * `transport: 'ipc', ipc: { uplink }`.
 * @publicApi
 */
export class TieredTransport implements Transport {
  readonly name = 'tiered';
  readonly features: TransportFeatures;
  /** The host transport's status: the process's own link (`role` says broker or worker). */
  readonly status$: Observable<TransportStatus>;
  private readonly host: HostTier;
  private context?: TransportContext;
  private limiter?: WarningLimiter;
  private uplink?: Transport;
  /** Resolves with the uplink once connected (this process is the broker). */
  private uplinkReady?: Promise<Transport>;
  private uplinkStarted?: Promise<void>;
  private retryTimer?: NodeJS.Timeout;
  /** Host posts seen while not the broker (newest last), relayed again on election. */
  private memory: Envelope[] = [];
  private memoryAt = 0;
  private seen = new Set<string>();
  private seenOld = new Set<string>();
  private closing?: Promise<void>;
  /** Host posts on their way to the network, one uplink publish per turn. */
  private readonly relays = new TurnBatch(batch =>
    this.uplinkReady!.then(uplink => uplink.publish(batch)),
  );
  /** Network events on their way into the host, one host publish per turn. */
  private readonly injections = new TurnBatch(batch => this.host.publish(batch));
  private readonly counters = {
    uplinkStarts: 0,
    uplinkConnectFailures: 0,
    relayed: 0,
    relayFailed: 0,
    relayedAgain: 0,
    fromNetwork: 0,
    ownSkipped: 0,
    networkDuplicates: 0,
    injectFailed: 0,
  };

  constructor(private readonly parts: TieredTransportParts) {
    this.host = parts.host;
    this.status$ = parts.host.status$;
    this.features = {
      reach: 'network',
      guarantee: 'at-least-once',
      ordering: 'per-sender',
      uniqueScope: 'network',
      maxPayloadBytes: parts.host.features.maxPayloadBytes,
      redelivers: false,
      loopback: true,
      persistent: false,
    };
  }

  /** Whether this process hosts the broker, and so the uplink. */
  get isBroker(): boolean {
    return this.host.isBroker;
  }

  async connect(context: TransportContext): Promise<void> {
    if (this.closing) throw new TransportClosedError();
    this.context = context;
    this.limiter = new WarningLimiter(context.logger, 10_000, context.clock);
    this.host.status$.subscribe(() => {
      if (this.host.isBroker) void this.startUplink();
    });
    await this.host.connect({ ...context, deliver: delivery => this.fromHost(delivery) });
    if (this.host.isBroker) await this.startUplink();
  }

  /** The broker's side: connects the uplink, then relays again what this process kept as a worker. */
  private startUplink(): Promise<void> {
    this.uplinkStarted ??= (() => {
      let ready!: (uplink: Transport) => void;
      // From now on host posts wait for the uplink instead of being kept.
      this.uplinkReady = new Promise<Transport>(resolve => (ready = resolve));
      return this.connectUplink(ready);
    })();
    return this.uplinkStarted;
  }

  private async connectUplink(ready: (uplink: Transport) => void): Promise<void> {
    const context = this.context!;
    if (this.closing) return;
    const uplink = this.parts.uplink();
    this.uplink = uplink;
    try {
      await uplink.connect({ ...context, deliver: delivery => this.fromNetwork(delivery) });
    } catch (error) {
      this.counters.uplinkConnectFailures++;
      this.uplink = undefined;
      this.limiter!.error(
        'uplink-connect',
        logLine(
          'tiered',
          'uplink-connect-failed',
          `the broker cannot connect its uplink: ${describeError(error)}; host posts wait, trying again`,
          { host: this.parts.hostName },
        ),
      );
      await uplink.close().catch(() => undefined);
      if (!this.closing)
        this.retryTimer = setTimeout(
          () => void this.connectUplink(ready),
          this.parts.retryMs ?? 1000,
        );
      return;
    }
    if (this.closing) {
      await uplink.close();
      return;
    }
    this.counters.uplinkStarts++;
    const again = this.takeMemory();
    context.logger.log(
      `tiered: this process runs host ${this.parts.hostName}'s uplink (${uplink.name}); relaying again ${again.length} recent host posts`,
    );
    ready(uplink);
    if (again.length > 0) {
      this.counters.relayedAgain += again.length;
      void this.relayAgain(again);
    }
  }

  /** Relays kept host posts again, a slice at a time, so the uplink's buffer never takes them all at once. */
  private async relayAgain(kept: Envelope[]): Promise<void> {
    for (let at = 0; at < kept.length && !this.closing; at += RELAY_AGAIN_SLICE)
      await this.relay(kept.slice(at, at + RELAY_AGAIN_SLICE));
  }

  /** Host posts this process kept as a worker, oldest first; forgotten. */
  private takeMemory(): Envelope[] {
    const kept = [...this.memory.slice(this.memoryAt), ...this.memory.slice(0, this.memoryAt)];
    this.memory = [];
    this.memoryAt = 0;
    return kept;
  }

  private remember(envelope: Envelope): void {
    if (this.memory.length < this.parts.relayMemory) {
      this.memory.push(envelope);
      return;
    }
    this.memory[this.memoryAt] = envelope;
    this.memoryAt = (this.memoryAt + 1) % this.parts.relayMemory;
  }

  /**
   * Relays host posts to the network (broker), or keeps them (worker).
   * Resolves once the uplink has them (or refused them, logged and counted).
   */
  private relay(envelopes: Envelope[]): Promise<void> {
    if (!this.uplinkReady) {
      for (const envelope of envelopes) this.remember(envelope);
      return Promise.resolve();
    }
    return Promise.all(
      envelopes.map(envelope =>
        this.relays.add(envelope).then(result => {
          if (result.ok) {
            this.counters.relayed++;
            return;
          }
          this.counters.relayFailed++;
          this.limiter!.error(
            'relay-failed',
            logLine(
              'tiered',
              'uplink-relay-failed',
              `a host post could not be relayed to the network (other hosts will not get it): ${describeError(result.error)}`,
              { source: envelope.source, event: envelope.event, id: envelope.id },
            ),
          );
        }),
      ),
    ).then(() => undefined);
  }

  /** A delivery of the host transport: a host post (relayed by the broker) or a network event. */
  private fromHost(delivery: Delivery): void {
    const context = this.context!;
    const envelope = delivery.envelope;
    const headers = envelope.headers;
    if (headers?.[TIER_HOST_HEADER] !== undefined) {
      // From another host (or a unique event this host won): posted here by the broker.
      context.deliver({
        envelope: withoutTierHeaders(envelope),
        attempt: delivery.attempt,
        settle: settlement => delivery.settle(settlement),
      });
      return;
    }
    const uniqueKey = headers?.[TIER_UNIQUE_HEADER];
    const outbound: Envelope = {
      ...withoutTierHeaders(envelope),
      ...(uniqueKey !== undefined && {
        unique: uniqueKey,
        id: envelope.id.slice(0, -MARKER.length),
      }),
      headers: { ...withoutTierHeaders(envelope).headers, [TIER_HOST_HEADER]: this.parts.hostName },
    };
    const relayed = this.relay([outbound]);
    if (uniqueKey !== undefined) {
      // Unique: run where the network says (once across the hosts), not here.
      void relayed.then(() => delivery.settle({ outcome: 'ack' }));
      return;
    }
    context.deliver({
      envelope,
      attempt: delivery.attempt,
      // The host transport's copy is released only once the network has it.
      settle: settlement => void relayed.then(() => delivery.settle(settlement)),
    });
  }

  /** A delivery of the uplink (broker only): posted into the host transport once, acknowledged after. */
  private fromNetwork(delivery: Delivery): void {
    const envelope = delivery.envelope;
    const from = envelope.headers?.[TIER_HOST_HEADER];
    if (from === this.parts.hostName && envelope.unique === undefined) {
      // This host's own post: its workers had it through the host transport.
      this.counters.ownSkipped++;
      delivery.settle({ outcome: 'ack' });
      return;
    }
    if (this.seen.has(envelope.id) || this.seenOld.has(envelope.id)) {
      this.counters.networkDuplicates++;
      this.limiter!.warn(
        'network-duplicate',
        logLine(
          'tiered',
          'uplink-duplicate',
          'an event from the network was already posted to this host (relayed again after a failover); dropped',
          { source: envelope.source, event: envelope.event, id: envelope.id, from },
        ),
      );
      delivery.settle({ outcome: 'ack' });
      return;
    }
    this.markSeen(envelope.id);
    const inbound: Envelope =
      from === undefined
        ? { ...envelope, headers: { ...envelope.headers, [TIER_HOST_HEADER]: '' } }
        : envelope;
    void this.injections.add(inbound).then(result => {
      if (result?.ok) {
        this.counters.fromNetwork++;
        delivery.settle({ outcome: 'ack' });
        return;
      }
      this.seen.delete(envelope.id);
      this.seenOld.delete(envelope.id);
      this.counters.injectFailed++;
      const error = result?.ok === false ? result.error : new TransportClosedError();
      this.limiter!.warn(
        'inject-failed',
        logLine(
          'tiered',
          'uplink-inject-failed',
          `an event from the network could not be posted to this host: ${describeError(error)}; left pending, read again`,
          { source: envelope.source, event: envelope.event, id: envelope.id },
        ),
      );
      delivery.settle({ outcome: 'nack', error });
    });
  }

  private markSeen(id: string): void {
    if (this.seen.size >= SEEN_BOUND) {
      this.seenOld = this.seen;
      this.seen = new Set();
    }
    this.seen.add(id);
  }

  /** Posts through the host transport; a `unique` post travels to the network as a header. */
  publish(batch: readonly Envelope[]): Promise<readonly PublishResult[]> {
    if (this.closing) {
      const error = new TransportClosedError();
      return Promise.resolve(batch.map(() => ({ ok: false, error })));
    }
    return this.host.publish(
      batch.map(envelope => {
        if (envelope.unique === undefined) return envelope;
        // Its own id: the host's processes must not take the event this host may win for a copy already seen.
        const { unique, ...rest } = envelope;
        return {
          ...rest,
          id: `${envelope.id}${MARKER}`,
          headers: { ...envelope.headers, [TIER_UNIQUE_HEADER]: unique },
        };
      }),
    );
  }

  async stopIntake(): Promise<void> {
    await Promise.all([this.uplink?.stopIntake?.(), this.host.stopIntake?.()]);
  }

  /**
   * The host transport's counters, then the tier's: `uplinkStarts`,
   * `uplinkConnectFailures`, `relayed` (host posts written to the network),
   * `relayFailed`, `relayedAgain` (kept host posts relayed on election),
   * `fromNetwork` (events of other hosts posted into this host),
   * `ownSkipped`, `networkDuplicates`, `injectFailed`, `uplinkConnected`;
   * in the broker's process the uplink's as `uplink.*`.
   */
  stats(): Readonly<Record<string, number>> {
    const stats: Record<string, number> = { ...this.host.stats() };
    for (const [name, value] of Object.entries(this.counters)) stats[`tier.${name}`] = value;
    stats['tier.relayMemory'] = this.memory.length;
    const uplink = this.uplink;
    stats['tier.uplinkConnected'] = uplink ? 1 : 0;
    if (uplink)
      for (const [name, value] of Object.entries(uplink.stats())) stats[`uplink.${name}`] = value;
    return stats;
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    // Stop reading the network first; then the host flushes (its relays still go out); then the uplink.
    await this.uplink?.stopIntake?.();
    await this.host.close();
    await this.uplink?.close();
  }
}

/** The envelope without the tier's headers (`headers` left out when nothing remains). */
function withoutTierHeaders(envelope: Envelope): Envelope {
  const headers = envelope.headers;
  if (!headers || (!(TIER_HOST_HEADER in headers) && !(TIER_UNIQUE_HEADER in headers)))
    return envelope;
  const { [TIER_HOST_HEADER]: _host, [TIER_UNIQUE_HEADER]: _unique, ...rest } = headers;
  const { headers: _headers, ...bare } = envelope;
  return Object.keys(rest).length > 0 ? { ...bare, headers: rest } : bare;
}

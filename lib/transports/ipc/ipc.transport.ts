import { BehaviorSubject, type Observable } from 'rxjs';
import type { Envelope } from '../../bus/envelope.interface.js';
import { TransportClosedError } from '../../bus/errors.js';
import type {
  PublishResult,
  Transport,
  TransportContext,
  TransportFeatures,
  TransportState,
  TransportStatus,
} from '../transport.interface.js';
import { IpcBroker } from './ipc.broker.js';
import { IpcClient } from './ipc.client.js';
import { METADATA_ALLOWANCE_BYTES } from './ipc.constants.js';
import {
  resolveIpcTransportOptions,
  type IpcTransportOptions,
  type ResolvedIpcTransportOptions,
} from './ipc.options.js';

/**
 * Events among the worker processes of one host, through a broker on a unix
 * socket (Kong's lua-resty-events for Node). `post` reaches every worker,
 * the sender included, in one global order, and resolves once the broker
 * acknowledged it; `unique` events run in one worker of the host.
 *
 * Under node:cluster the primary hosts the broker ({@link startBroker});
 * with independent processes (pm2) the worker whose id is `brokerId` hosts
 * it in-process. Options are validated here, at construction.
 * @publicApi
 */
export class IpcTransport implements Transport {
  readonly name = 'ipc';
  readonly features: TransportFeatures;
  readonly options: ResolvedIpcTransportOptions;
  private readonly role: 'broker' | 'worker';
  private readonly status = new BehaviorSubject<TransportStatus>({ state: 'connecting' });
  readonly status$: Observable<TransportStatus> = this.status.asObservable();
  private hosted?: IpcBroker;
  private client?: IpcClient;
  private closed = false;
  private closing?: Promise<void>;

  constructor(options: IpcTransportOptions = {}) {
    this.options = resolveIpcTransportOptions(options);
    this.role = this.options.hostBroker ? 'broker' : 'worker';
    this.status.next({ state: 'connecting', role: this.role });
    this.features = {
      reach: 'host',
      guarantee: 'effectively-once',
      ordering: 'global',
      uniqueScope: 'host',
      maxPayloadBytes: this.options.maxPayloadBytes,
      redelivers: false,
      loopback: true,
      persistent: false,
    };
  }

  /** The broker this process hosts, if it hosts one. */
  get broker(): IpcBroker | undefined {
    return this.hosted;
  }

  async connect(context: TransportContext): Promise<void> {
    if (this.closed) throw new TransportClosedError();
    if (this.client) throw new Error('ipc transport is already connected');
    const options = this.options;
    if (options.hostBroker) {
      const broker = new IpcBroker(
        {
          socketPath: options.socketPath,
          workerCount: options.workerCount,
          maxQueueLength: options.maxQueueLength,
          maxPayloadBytes: options.maxPayloadBytes,
          unique: context.unique,
        },
        { logger: context.logger, clock: context.clock },
      );
      await broker.listen();
      this.hosted = broker;
    }
    const client = new IpcClient({
      socketPath: options.socketPath,
      workerId: options.workerId,
      window: options.maxQueueLength,
      postTimeoutMs: options.postTimeoutMs,
      maxFrameBytes: options.maxPayloadBytes + METADATA_ALLOWANCE_BYTES,
      maxQueueLength: options.maxQueueLength,
      logger: context.logger,
      deliver: delivery => context.deliver(delivery),
      status: (state, reason) => this.setStatus(state, reason),
    });
    this.client = client;
    try {
      await client.connect();
    } catch (error) {
      await this.hosted?.close();
      this.hosted = undefined;
      this.client = undefined;
      this.setStatus('disconnected', (error as Error).message);
      throw error;
    }
  }

  private setStatus(state: TransportState, reason?: string): void {
    if (this.closed && state !== 'closed') return;
    this.status.next(
      reason === undefined ? { state, role: this.role } : { state, role: this.role, reason },
    );
  }

  publish(batch: readonly Envelope[]): Promise<readonly PublishResult[]> {
    const client = this.client;
    if (this.closed || !client) {
      const error = new TransportClosedError(
        this.closed ? undefined : 'transport is not connected',
      );
      return Promise.resolve(batch.map(() => ({ ok: false, error })));
    }
    return client.publish(batch);
  }

  async stopIntake(): Promise<void> {
    this.client?.stopIntake();
  }

  stats(): Readonly<Record<string, number>> {
    const client = this.client;
    const stats: Record<string, number> = client
      ? { ...client.counters, inFlight: client.inFlight }
      : {};
    const broker = this.hosted;
    if (broker) {
      for (const [name, value] of Object.entries(broker.stats())) {
        stats[`broker${name[0].toUpperCase()}${name.slice(1)}`] = value;
      }
    }
    return stats;
  }

  /** Waits up to postTimeoutMs for the broker to acknowledge what was posted, then closes (and stops a hosted broker). */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await this.client?.close(this.options.postTimeoutMs);
    this.closed = true;
    await this.hosted?.close();
    this.status.next({ state: 'closed', role: this.role });
    this.status.complete();
  }
}

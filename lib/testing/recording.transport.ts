import { LocalTransport } from '../transports/local/local.transport.js';
import type { Envelope } from '../interfaces/envelope.interface.js';
import type {
  PublishResult,
  Settlement,
  TransportContext,
} from '../interfaces/transport.interface.js';
import { TransportClosedError } from '../common/errors.js';

const ACCEPTED: PublishResult = Object.freeze({ ok: true });

/** Options of {@link RecordingTransport}. @publicApi */
export interface RecordingTransportOptions {
  /**
   * Hand what is posted back to this process's handlers, as the local
   * transport does; `false` records only (a service's posts, no reactions).
   * @default true
   */
  loopback?: boolean;
}

/**
 * The local transport, recording every envelope posted through it, and able
 * to deliver envelopes made up by a test as if another process had posted
 * them (any `attempt`, `headers`, `key`, `origin`). `unique` is honoured as
 * the local transport does (within this process).
 * @publicApi
 */
export class RecordingTransport extends LocalTransport {
  /** Every envelope posted, in order (a `unique` repeat included: it was posted). */
  readonly envelopes: Envelope[] = [];
  private readonly loopback: boolean;
  private connected?: TransportContext;

  constructor(options: RecordingTransportOptions = {}) {
    super();
    this.loopback = options.loopback ?? true;
  }

  override async connect(context: TransportContext): Promise<void> {
    await super.connect(context);
    this.connected = context;
  }

  override async publish(batch: readonly Envelope[]): Promise<readonly PublishResult[]> {
    if (this.connected) this.envelopes.push(...batch);
    if (this.loopback || !this.connected) return super.publish(batch);
    return batch.map(() => ACCEPTED);
  }

  /**
   * Hands `envelope` to the bus as a delivery of attempt `attempt`;
   * resolves with how the bus settled it (`ack`, or `nack` with the error).
   */
  deliver(envelope: Envelope, attempt = 1): Promise<Settlement> {
    const context = this.connected;
    if (!context) return Promise.reject(new TransportClosedError('transport is not connected'));
    return new Promise(resolve => context.deliver({ envelope, attempt, settle: resolve }));
  }

  override async close(): Promise<void> {
    this.connected = undefined;
    await super.close();
  }
}

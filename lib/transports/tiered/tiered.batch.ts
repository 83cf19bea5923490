import type { Envelope } from '../../interfaces/envelope.interface.js';
import type { PublishResult } from '../../interfaces/transport.interface.js';
import { asError } from '../../common/describe-error.js';

/**
 * Gathers the envelopes added within one turn of the event loop into one
 * publish call (a socket read of the host transport, or a read of the
 * stream, hands over many at once); each `add` resolves with its own
 * result. Calls go out one after the other, in the order of the adds.
 */
export class TurnBatch {
  private items: Envelope[] = [];
  private waiters: ((result: PublishResult) => void)[] = [];
  private scheduled = false;

  constructor(private readonly publish: (batch: Envelope[]) => Promise<readonly PublishResult[]>) {}

  add(envelope: Envelope): Promise<PublishResult> {
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    this.items.push(envelope);
    return new Promise(resolve => this.waiters.push(resolve));
  }

  private flush(): void {
    const items = this.items;
    const waiters = this.waiters;
    this.items = [];
    this.waiters = [];
    this.scheduled = false;
    this.publish(items).then(
      results => waiters.forEach((resolve, i) => resolve(results[i])),
      (error: unknown) => {
        const failed: PublishResult = {
          ok: false,
          error: asError(error),
        };
        for (const resolve of waiters) resolve(failed);
      },
    );
  }
}

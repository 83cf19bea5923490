// How bench:ipc's `wire` variant (and bench/ipc.inprocess.ts) posts: what the
// bus hands the ipc transport, made without the bus, so the ceiling carries
// herald's frames and batches. Envelopes have the shape and sizes of the
// bus's own (a UUID-shaped 36-character id, a random prefix per 256 ids and a
// counting suffix as the bus makes them; the process's origin host/pid/
// instance; the time as ISO-8601); posts go to `publish` in one batch per
// microtask (at most 1000), as the bus's outbox sends them. Shorter fields or
// other batches would make the ceiling cheaper, or dearer, than the path
// herald takes through the same transport.
import { randomUUID } from 'node:crypto';
import { processOrigin } from '../lib/common/origin.js';
import type { Envelope } from '../lib/interfaces/envelope.interface.js';

const BLOCK = 256;
const MAX_BATCH = 1000;
const COUNTING: readonly string[] = Array.from({ length: BLOCK }, (_, i) =>
  i.toString(16).padStart(2, '0'),
);

export class WirePoster {
  private readonly origin = processOrigin();
  private prefix = '';
  private counter = BLOCK;
  private lastNow = NaN;
  private lastIso = '';
  private batch: Envelope[] = [];
  private scheduled = false;
  private readonly flushBound = (): void => this.flush();

  constructor(
    private readonly publish: (batch: Envelope[]) => Promise<unknown>,
    private readonly source: string,
    private readonly event: string,
  ) {}

  /** Posts `payload` (already encoded): sent with the others of this microtask. */
  post(payload: string): void {
    this.batch.push(this.envelope(payload));
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(this.flushBound);
  }

  private envelope(payload: string): Envelope {
    if (this.counter === BLOCK) {
      this.prefix = randomUUID().slice(0, 34);
      this.counter = 0;
    }
    const now = Date.now();
    if (now !== this.lastNow) {
      this.lastNow = now;
      this.lastIso = new Date(now).toISOString();
    }
    return {
      id: this.prefix + COUNTING[this.counter++],
      source: this.source,
      event: this.event,
      payload,
      origin: this.origin,
      occurredAt: this.lastIso,
    };
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.batch;
    this.batch = [];
    for (let at = 0; at < batch.length; at += MAX_BATCH) {
      const part = at === 0 && batch.length <= MAX_BATCH ? batch : batch.slice(at, at + MAX_BATCH);
      void this.publish(part);
    }
  }
}

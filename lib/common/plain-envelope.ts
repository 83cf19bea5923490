import type { Envelope } from '../interfaces/envelope.interface.js';

/**
 * An envelope with no key, unique, headers or transport options: what most
 * posts send, with the fields of the object literal it replaces, in the same
 * order (one shape wherever it is made).
 *
 * A class, not a literal, for V8's allocation-site pretenuring: a literal's
 * site counts how many of its objects a scavenge finds alive, and posts made
 * a window at a time (1,000 resuming together) and each kept until the
 * transport answered are all alive at a scavenge, so V8 decided to allocate
 * every later envelope of that site in old space (`--trace-pretenuring`),
 * where each dies only at a full collection and keeps its young strings
 * alive through the remembered set (issue 24, helper gc24: over Redis about
 * half the single runs went that way, 1.1-2.6 MB promoted per scavenge
 * instead of ~0.37). A constructor call has no such site.
 */
export class PlainEnvelope implements Envelope {
  constructor(
    readonly id: string,
    readonly source: string,
    readonly event: string,
    readonly payload: string,
    readonly origin: string,
    readonly occurredAt: string,
  ) {}
}

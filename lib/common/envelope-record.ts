import type { Envelope } from '../interfaces/envelope.interface.js';

/**
 * An envelope with the six members every event has (no key, unique, headers
 * or transport options), as made by `post` and by a transport's decoder.
 *
 * A class and not an object literal because of V8's allocation-site
 * pretenuring: a literal's site counts the objects it made that a scavenge
 * finds alive, and once nearly all are (a window of 1000 posts resumed
 * together, each kept until its write is answered; a batch of 1000 entries
 * read before their handlers settle), V8 makes every later object of that
 * site in the old generation. There they die young, and keep their young
 * strings alive through the remembered set: 1.1–2.6 MB promoted per
 * scavenge instead of 0.35–0.6, the old generation climbing, 6–8 ms
 * scavenges and concurrent marking (`--trace-pretenuring`: (created, found)
 * ≈ (985, 985) then "tenure" in every slow run of bench/redis-before-after.ts
 * (herald, BENCH_SINGLE), in none of the fast ones;
 * `--no-allocation-site-pretenuring` made 5 of 5 runs fast).
 * `new` of a class has no allocation site, so nothing is ever pretenured.
 * The same member order as the literal it replaces: the same fields.
 */
export class EnvelopeRecord implements Envelope {
  constructor(
    readonly id: string,
    readonly source: string,
    readonly event: string,
    readonly payload: string,
    readonly origin: string,
    readonly occurredAt: string,
  ) {}
}

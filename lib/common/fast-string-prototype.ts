/**
 * Puts `String.prototype` back in V8's fast mode (a no-op when it is).
 * Declaring a subclass of `String` (ioredis 6 declares `class
 * VerbatimString extends String`) puts `String.prototype` in V8's
 * prototype "setup mode" (its properties in a dictionary) until an object
 * inheriting from it is written to, which method calls on primitive strings
 * never do. Meanwhile every `s.slice`, `s.charCodeAt`, `s.indexOf` of
 * optimized code is a generic lookup (`LoadIC`, ~145 instructions each).
 * The redis transport does this once it loaded ioredis
 * (redis.string-prototype.ts); the bus does it when it is built, since an
 * app may load ioredis without the redis transport (issue 24:
 * bench/bus-before-after.ts imports it, and each local post paid a
 * `LoadIC` for its id's `slice`: callgrind, 14,427 -> 14,200 instructions
 * per post). One write to an object inheriting from it does what
 * `new VerbatimString()` would.
 */
export function fastStringPrototype(): void {
  const probe = Object.create(String.prototype) as { herald?: boolean };
  probe.herald = true;
}

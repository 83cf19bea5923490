/**
 * Puts `String.prototype` back in V8's fast mode, once, after ioredis is
 * loaded (redis.connection.ts imports this module right after it). ioredis 6
 * declares `class VerbatimString extends String`, and declaring a subclass
 * puts the parent's prototype in V8's prototype "setup mode" (properties in
 * a dictionary) until an object inheriting from it is written to, which
 * method calls on primitive strings never do (and ioredis builds a
 * VerbatimString only for RESP3 replies). Meanwhile every `s.charCodeAt`,
 * `s.slice`, `s.indexOf` of optimized code is a generic lookup: over Redis,
 * per event, about 3,400 instructions of `Builtins_LoadIC` for
 * `EventsModule` post -> `@OnEvent` and 2,100 for the stream parts
 * (callgrind, issue 24). One write to an object inheriting from it does
 * what `new VerbatimString()` would.
 */
function fastStringPrototype(): void {
  const probe = Object.create(String.prototype) as { herald?: boolean };
  probe.herald = true;
}
fastStringPrototype();

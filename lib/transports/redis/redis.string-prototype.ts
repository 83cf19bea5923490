import { fastStringPrototype } from '../../common/fast-string-prototype.js';

// redis.connection.ts imports this module right after ioredis, whose
// `class VerbatimString extends String` leaves String.prototype slow (see
// fastStringPrototype): over Redis it cost, per event, about 3,400
// instructions of `Builtins_LoadIC` for `EventsModule` post -> `@OnEvent`
// and 2,100 for the stream parts (callgrind, issue 24). Every redis entry
// point loads the connection, so the stream parts without a bus get it too.
fastStringPrototype();

// The project's Jest environment: Node's, plus a guard against test files that
// leave a timer behind (issue 13 point 5).
//
// A ref'ed timer still pending after a test file ended keeps its Jest worker
// alive; once the worker is more than workerGracefulExitTimeout late, Jest
// SIGTERMs it and prints "A worker process has failed to exit gracefully".
// That was ipc.outbound.spec.ts leaving an Outbound's 60 s expiry timer armed.
//
// Every setTimeout/setInterval of the file (its code, lib/ and the packages it
// loads, which all use the file's globals) is recorded with where it was made.
// At the file's end, after its afterAll hooks, timers due within GRACE_MS (of
// each moment, for at most CAP_MS) are
// let run; a ref'ed timeout still pending and not yet due then (or any ref'ed
// interval) fails the file, naming the line that made it, and is cleared. Timers of Node's own modules (a
// socket's timeout) are not seen, nor are handles (sockets, servers, child
// processes), whose close completes asynchronously.
const { TestEnvironment } = require('jest-environment-node');

const GRACE_MS = 2_000;
// Jest's workerGracefulExitTimeout is 10 s (jest.config.cjs): stay well within.
const CAP_MS = 5_000;
/** Recorded timers beyond which the fired/cleared ones are dropped. */
const PRUNE_AT = 1_000;

function pending(timer) {
  return !timer._destroyed && (typeof timer.hasRef !== 'function' || timer.hasRef());
}

class TimerGuardEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    this.testPath = context.testPath;
    /** @type {{ timer: NodeJS.Timeout, kind: string, ms: number, due: number, site: { stack?: string } }[]} */
    this.timers = [];
    this.pruneAt = PRUNE_AT;
    const global = this.global;
    const record = entry => this.record(entry);
    for (const kind of ['setTimeout', 'setInterval']) {
      const original = global[kind];
      const wrapped = function (callback, ms, ...args) {
        const timer = original(callback, ms, ...args);
        // Only a real Timeout is tracked (not a fake timer's id).
        if (timer && typeof timer === 'object' && typeof timer.hasRef === 'function') {
          const site = {};
          const limit = Error.stackTraceLimit;
          Error.stackTraceLimit = 12;
          Error.captureStackTrace(site, wrapped);
          Error.stackTraceLimit = limit;
          const delay = Number(ms) > 0 ? Number(ms) : 1;
          record({ timer, kind, ms: delay, due: Date.now() + delay, site });
        }
        return timer;
      };
      Object.defineProperty(wrapped, 'name', { value: kind });
      // util.promisify(setTimeout) keeps working.
      if (original[Symbol.for('nodejs.util.promisify.custom')]) {
        wrapped[Symbol.for('nodejs.util.promisify.custom')] =
          original[Symbol.for('nodejs.util.promisify.custom')];
      }
      global[kind] = wrapped;
    }
  }

  record(entry) {
    this.timers.push(entry);
    if (this.timers.length >= this.pruneAt) {
      this.timers = this.timers.filter(e => !e.timer._destroyed);
      this.pruneAt = Math.max(PRUNE_AT, 2 * this.timers.length);
    }
  }

  /** Ref'ed timers still pending. */
  live() {
    return this.timers.filter(e => pending(e.timer));
  }

  async teardown() {
    // Short timers (a retry, a drain's fallback, a client's socket-close
    // fallback) may end on their own, and may be made while we wait (a reply
    // arriving after the last test, ioredis's 2 s disconnect fallback): wait
    // while one is due within GRACE_MS of now, for at most CAP_MS in all.
    const started = Date.now();
    while (
      Date.now() - started < CAP_MS &&
      this.live().some(e => e.kind === 'setTimeout' && e.due <= Date.now() + GRACE_MS)
    ) {
      await new Promise(resolve => setTimeout(resolve, 25));
    }
    // A timeout already due is only late (a busy loop): it cannot hold the worker.
    const now = Date.now();
    const left = this.live().filter(e => e.kind === 'setInterval' || e.due > now);
    this.timers = [];
    await super.teardown();
    if (left.length === 0) return;
    // Reported: cleared, so that the failure is this message alone.
    for (const e of left) clearTimeout(e.timer);
    const lines = left.map(e => {
      const frames = (e.site.stack ?? '')
        .split('\n')
        .slice(1)
        .filter(line => !line.includes('node_modules/jest-') && !line.includes('node:internal'))
        .slice(0, 8);
      return `${e.kind}(…, ${e.ms}) still pending and ref'ed, made\n${frames.join('\n')}`;
    });
    throw new Error(
      `${left.length} timer(s) outlived this test file and would hold its Jest worker ` +
        `("A worker process has failed to exit gracefully"): close what made them ` +
        `(or unref a timer that must not keep a process alive).\n\n${lines.join('\n\n')}`,
    );
  }
}

module.exports = TimerGuardEnvironment;

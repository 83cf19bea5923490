import type { Clock } from '../../../lib/common/clock.js';
import { WarningLimiter } from '../../../lib/common/warning-limiter.js';
import type { HeraldLogger } from '../../../lib/common/logger.js';

function recorder(): { logger: HeraldLogger; lines: string[] } {
  const lines: string[] = [];
  const logger: HeraldLogger = {
    log: () => undefined,
    warn: m => lines.push(`WARN ${m}`),
    error: m => lines.push(`ERROR ${m}`),
  };
  return { logger, lines };
}

describe('WarningLimiter', () => {
  it('writes one line per cause per interval and folds the repeats into the next', () => {
    let now = 0;
    const clock: Clock = { now: () => now };
    const { logger, lines } = recorder();
    const limiter = new WarningLimiter(logger, 1000, clock);
    for (let n = 0; n < 40_000; n++) limiter.warn('queue-full', `queue full, dropped event ${n}`);
    expect(lines).toEqual(['WARN queue full, dropped event 0']);
    now = 1000;
    limiter.warn('queue-full', 'queue full, dropped event 40000');
    expect(lines[1]).toBe(
      'WARN queue full, dropped event 40000 (and 39999 more like it since the last such line)',
    );
  });

  it('keeps causes apart and flushes what it held back', () => {
    const { logger, lines } = recorder();
    const limiter = new WarningLimiter(logger, 60_000, { now: () => 0 });
    limiter.warn('a', 'a1');
    limiter.error('b', 'b1');
    limiter.warn('a', 'a2');
    limiter.warn('a', 'a3');
    expect(lines).toEqual(['WARN a1', 'ERROR b1']);
    limiter.flush();
    expect(lines[2]).toBe('WARN a3 (and 2 more like it since the last such line)');
    limiter.flush();
    expect(lines).toHaveLength(3);
  });
});

import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

const root = resolve(__dirname, '../../../..');

describe('redis.string-prototype', () => {
  // ioredis 6 declares `class VerbatimString extends String`, which leaves
  // String.prototype with dictionary properties: every string method call of
  // optimized code becomes a generic lookup (issue 24). Loading herald's redis
  // module must leave it fast. In a process of its own: the flag and the
  // module cache of this one would hide it.
  it('leaves String.prototype with fast properties after ioredis is loaded', () => {
    const out = execFileSync(
      process.execPath,
      [
        '--allow-natives-syntax',
        '--import',
        './scripts/register-ts.mjs',
        'test/fixtures/redis/string-prototype.ts',
      ],
      { cwd: root, encoding: 'utf8' },
    );
    const { afterIoredis, afterHerald } = JSON.parse(out.trim().split('\n').at(-1)!) as {
      afterIoredis: boolean;
      afterHerald: boolean;
    };
    // The cause is still there (else this spec proves nothing and may go)...
    expect(afterIoredis).toBe(false);
    // ...and herald undoes it.
    expect(afterHerald).toBe(true);
  });
});

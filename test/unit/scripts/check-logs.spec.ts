import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../../helpers/processes.js';
import { tempDir } from '../../helpers/temp-dir.js';

const run = promisify(execFile);
const SCRIPT = path.join(ROOT, 'scripts', 'check-logs.mjs');

const TABLE = [
  '## Operations',
  '',
  '### Log lines',
  '',
  '| code | level | transport | meaning | what to do |',
  '|---|---|---|---|---|',
  '| `thing-broke` | warn | redis | a thing broke | mend it |',
  '',
  '## Next',
].join('\n');

/** A checkout with lib/a.ts holding `source` and a README with the table. */
function checkout(source: string, readme = TABLE): string {
  const root = tempDir('check-logs-');
  mkdirSync(path.join(root, 'lib', 'x'), { recursive: true });
  writeFileSync(path.join(root, 'lib', 'x', 'a.ts'), source);
  writeFileSync(path.join(root, 'README.md'), readme);
  return root;
}

async function check(root: string, ...flags: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [SCRIPT, '--root', root, ...flags]);
    return { code: 0, out: stdout + stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

const documented = `
  this.logger.warn(logLine('redis', 'thing-broke', 'it broke', { id }));
  this.limiter.warn('cause', logLine('redis', 'thing-broke-too', 'again'));
`;

describe('scripts/check-logs.mjs', () => {
  it('passes when every WARN/ERROR call uses a documented, unique logLine code', async () => {
    const root = checkout(`this.context?.logger.warn(logLine('redis', 'thing-broke', 'x'));`);
    const result = await check(root);
    expect(result).toEqual({ code: 0, out: expect.stringContaining('1 WARN/ERROR lines') });
  });

  it('fails on a code missing from the README table, naming file, line and code', async () => {
    const result = await check(checkout(documented));
    expect(result.code).toBe(1);
    expect(result.out).toContain(
      `lib/x/a.ts:3: code 'thing-broke-too' is not in README.md's "Log lines" table`,
    );
  });

  it('fails on a message not built with logLine, a duplicate code, a wrong level or transport', async () => {
    const source = [
      'logger.error(`plain ${text}`);',
      "this.options.logger.warn(logLine('redis', 'thing-broke', 'a'));",
      "this.logger().warn(logLine('redis', 'thing-broke', 'b'));",
      "warnings.error('c', logLine('pg', 'other-code', 'c'));",
    ].join('\n');
    const readme = TABLE.replace(
      '| `thing-broke` |',
      '| `other-code` | warn | redis | x | y |\n| `thing-broke` |',
    );
    const { code, out } = await check(checkout(source, readme));
    expect(code).toBe(1);
    expect(out).toContain('lib/x/a.ts:1: error: message is not built with logLine');
    expect(out).toContain("lib/x/a.ts:3: code 'thing-broke' is used at lib/x/a.ts:2 too");
    expect(out).toContain("code 'other-code' is logged at error, README.md:7 says warn");
    expect(out).toContain("code 'other-code' names transport pg, README.md:7 says redis");
  });

  it('reports README rows no call uses, and leaves forwarding adapters and console alone', async () => {
    const source = [
      'const adapter = { warn: (message: string) => this.context?.logger.warn(message) };',
      'console.warn("not a herald line");',
    ].join('\n');
    const { code, out } = await check(checkout(source));
    expect(code).toBe(1);
    expect(out).toContain(
      "README.md:7: code 'thing-broke' is listed but no WARN/ERROR call uses it",
    );
    expect(out).not.toContain('lib/x/a.ts');
  });

  it('--advisory prints one summary line and exits 0', async () => {
    const { code, out } = await check(checkout(documented), '--advisory');
    expect(code).toBe(0);
    expect(out.trim()).toBe(
      'check-logs: 1 problem(s) (advisory; `node scripts/check-logs.mjs` lists them)',
    );
  });
});

describe('scripts/check-logs.mjs --add-rows', () => {
  it('merges LOGCODES.md rows into the table, sorted by transport then code; INFO rows need no call', async () => {
    const source = [
      "logger.warn(logLine('redis', 'thing-broke', 'x'));",
      "logger.error(logLine('pg', 'listen-failed', 'y'));",
    ].join('\n');
    const root = checkout(source, `${TABLE.replace('## Next', '<!-- /log-lines -->\n\n## Next')}`);
    const rows = path.join(root, 'LOGCODES.md');
    writeFileSync(
      rows,
      [
        '| code | level | transport | meaning | what to do |',
        '|---|---|---|---|---|',
        '| listen-failed | ERROR | pg | LISTEN failed | check pg |',
        '| listen-recovered | INFO | pg | LISTEN is back | none |',
      ].join('\n'),
    );
    const { code, out } = await check(root, '--add-rows', rows);
    expect(out).toContain("README.md's table has 3 rows");
    expect(code).toBe(0);
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    expect(readme).toContain(
      [
        '| `listen-failed` | ERROR | pg | LISTEN failed | check pg |',
        '| `listen-recovered` | INFO | pg | LISTEN is back | none |',
        '| `thing-broke` | warn | redis | a thing broke | mend it |',
        '<!-- /log-lines -->',
      ].join('\n'),
    );
  });
});

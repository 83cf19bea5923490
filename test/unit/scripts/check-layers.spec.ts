import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../../helpers/processes.js';
import { tempDir } from '../../helpers/temp-dir.js';

const run = promisify(execFile);
const SCRIPT = path.join(ROOT, 'scripts', 'check-layers.mjs');

/** A checkout whose lib/ holds `files` (path under lib -> source). */
function checkout(files: Record<string, string>): string {
  const root = tempDir('check-layers-');
  for (const [file, source] of Object.entries(files)) {
    const full = path.join(root, 'lib', file);
    mkdirSync(path.dirname(full), { recursive: true });
    writeFileSync(full, source);
  }
  return root;
}

async function check(root: string): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [SCRIPT, '--root', root]);
    return { code: 0, out: stdout + stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

const base = {
  'common/errors.ts': 'export class E {}\n',
  'transports/ipc/ipc.transport.ts': "import { E } from '../../common/errors.js';\nexport { E };\n",
  'transports/redis/redis.transport.ts': 'export class R {}\n',
};

describe('scripts/check-layers.mjs', () => {
  it('passes this checkout', async () => {
    const result = await check(ROOT);
    expect(result).toMatchObject({ code: 0 });
    expect(result.out).toMatch(/imports point down, no cycle/);
  });

  it('lets the files directly in lib/transports combine transports', async () => {
    const root = checkout({
      ...base,
      'transports/create-tiered.ts':
        "import { E } from './ipc/ipc.transport.js';\nimport type { R } from './redis/redis.transport.js';\n",
    });
    expect(await check(root)).toMatchObject({ code: 0 });
  });

  it('refuses one transport folder importing another, type-only imports included', async () => {
    const root = checkout({
      ...base,
      'transports/tiered/tiered.transport.ts':
        "import type { R } from '../redis/redis.transport.js';\n",
    });
    const result = await check(root);
    expect(result.code).toBe(1);
    expect(result.out).toContain(
      'one transport imports another: lib/transports/tiered/tiered.transport.ts (tiered) -> lib/transports/redis/redis.transport.ts (redis)',
    );
  });

  it('still refuses a transport importing the bus (sideways between layers)', async () => {
    const root = checkout({
      ...base,
      'bus/event-bus.ts': 'export class B {}\n',
      'transports/local/local.transport.ts': "import { B } from '../../bus/event-bus.js';\n",
    });
    const result = await check(root);
    expect(result.code).toBe(1);
    expect(result.out).toContain(
      'upward or sideways import: lib/transports/local/local.transport.ts',
    );
  });
});

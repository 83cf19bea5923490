import type { HeraldLogger } from '../../../lib/common/logger.js';
import { NativeRuntime } from '../../../lib/ffi/native-runtime.js';
import type { NativeRuntimeStatus } from '../../../lib/ffi/native-runtime.core.js';
import { uniqueName } from '../../helpers/services.js';
import { buildNative, fixture } from './ffi-fixtures.js';

// lib/ffi/native-runtime.core.ts: the state shared by every handle on one
// runtime, its StateMachine and its warnings.

beforeAll(() => buildNative(), 120_000);

const recorder = (): HeraldLogger & { lines: string[] } => {
  const lines: string[] = [];
  return {
    lines,
    log: () => undefined,
    warn: message => lines.push(`warn ${message}`),
    error: message => lines.push(`error ${message}`),
    debug: message => lines.push(`debug ${message}`),
  };
};

describe('NativeRuntime status$', () => {
  it('is loaded, then unloaded when the last handle closes, then completes', () => {
    const logger = recorder();
    const cfg = `threads=1;${uniqueName('status')}`;
    const first = NativeRuntime.load(fixture('echo'), { cfg, name: 'status', logger });
    const second = NativeRuntime.load(fixture('echo'), { cfg, name: 'status' });
    const seen: NativeRuntimeStatus[] = [];
    let completed = false;
    first.status$.subscribe({ next: s => seen.push(s), complete: () => (completed = true) });
    expect(seen).toEqual([{ state: 'loaded' }]);
    first.close();
    expect(seen).toHaveLength(1); // a handle is still open
    second.close();
    expect(seen.map(s => s.state)).toEqual(['loaded', 'unloaded']);
    expect(seen[1].reason).toBe('its last handle was closed');
    expect(completed).toBe(true);
    expect(logger.lines).toContain(
      'debug native runtime "status": loaded -> unloaded (its last handle was closed)',
    );
  });

  it('logs unterminated answers through its logger, one line per interval, counted', async () => {
    const logger = recorder();
    const cases = NativeRuntime.load(fixture('cases'), {
      cfg: uniqueName('warn'),
      name: 'warner',
      logger,
    });
    await Promise.all([
      cases.call('unterminated'),
      cases.call('unterminated'),
      cases.call('unterminated'),
    ]);
    expect(cases.stats().unterminated).toBe(3);
    const warnings = logger.lines.filter(line => line.startsWith('warn'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /ffi unterminated-answer: runtime "warner" answered rsp_len 0 with no NUL within the block; .* \[runtime=warner path=\S+cases\.so\]$/,
    );
    cases.close();
    // Closing writes what was held back.
    expect(logger.lines.filter(line => line.startsWith('warn'))).toHaveLength(2);
  });
});

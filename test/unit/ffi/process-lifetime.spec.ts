import { killAllChildren, spawnNode } from '../../helpers/processes.js';
import { waitFor } from '../../helpers/wait-for.js';
import { buildNative, fixture } from './ffi-fixtures.js';

beforeAll(() => buildNative(), 120_000);
afterAll(() => killAllChildren());

describe('NativeRuntime and the process lifetime', () => {
  it('keeps the process alive while a call is in flight, and lets it exit when none is', async () => {
    const child = spawnNode('test/fixtures/ffi/exit-child.ts', {
      args: [fixture('gate'), '5000000'],
    });
    // No timer, socket or stdin listener: only the call in flight keeps it running.
    await child.waitForLine(/^answered [0-9a-f]{16}$/);
    await waitFor(() => child.child.exitCode !== null, {
      message: 'the idle child exits by itself',
    });
    expect(child.child.exitCode).toBe(0);
  });

  it('lets it exit once the only call in flight timed out, while the runtime still works on it', async () => {
    // 10^12 rounds: the poller is still hashing when the process exits.
    const child = spawnNode('test/fixtures/ffi/exit-child.ts', {
      args: [fixture('gate'), '1000000000000', '50'],
    });
    await child.waitForLine(/^abandoned: NativeCallTimeoutError$/);
    await waitFor(() => child.child.exitCode !== null, {
      message: 'the child exits with its abandoned call still running',
    });
    expect(child.child.exitCode).toBe(0);
  });
});

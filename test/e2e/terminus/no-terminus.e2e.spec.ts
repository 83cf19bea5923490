import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, killAllChildren, spawnNode } from '../../helpers/processes.js';

const HIDE = pathToFileURL(path.join(ROOT, 'test/fixtures/terminus/hide-terminus.mjs')).href;

afterAll(() => killAllChildren());

describe('an app that installs no @nestjs/terminus', () => {
  it('loads the root entry, handles an event and closes; only nest-herald/terminus needs the peer', async () => {
    const child = spawnNode('test/fixtures/terminus/no-terminus.app.ts', {
      env: { NODE_OPTIONS: `--import ${HIDE}` },
    });
    await child.waitForLine('handled {"n":1}');
    // The hook is live: the one subpath that needs terminus cannot load.
    await child.waitForLine(/terminus refused: Cannot find package '@nestjs\/terminus'/);
    await child.waitForLine('closed');
    expect(await child.exited).toEqual({ code: 0, signal: null });
    expect(child.count('terminus loaded')).toBe(0);
  });
});

import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, killAllChildren, spawnNode } from '../../helpers/processes.js';

const HIDE = pathToFileURL(path.join(ROOT, 'test/fixtures/otel/hide-peers.mjs')).href;

afterAll(() => killAllChildren());

describe('an app that installs none of the optional peers', () => {
  it('loads, handles an event and closes with no telemetry hooks; enableTelemetry says false', async () => {
    const child = spawnNode('test/fixtures/otel/no-peers.app.ts', {
      env: { NODE_OPTIONS: `--import ${HIDE}` },
    });
    // The hook is live: the API cannot be imported in this process.
    await child.waitForLine(/otel api refused: Cannot find package '@opentelemetry\/api'/);
    await child.waitForLine('handled {"n":1}');
    await child.waitForLine('telemetry none');
    await child.waitForLine('enableTelemetry -> false');
    await child.waitForLine('closed');
    expect(await child.exited).toEqual({ code: 0, signal: null });
  });
});

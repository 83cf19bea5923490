import { renameSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { killAllChildren, spawnNode, type ChildHandle } from '../../helpers/processes.js';
import { waitFor } from '../../helpers/wait-for.js';
import { command, received, socketDir, startWorker } from './ipc-helpers.js';

// Independent processes (as under pm2): no primary, every one of them may
// host the broker, elected through the broker lock.
const dir = socketDir();
const WORKERS = 4;

afterAll(() => killAllChildren());

function failoverWorker(socketPath: string, workerId: number): Promise<ChildHandle> {
  return startWorker({ socketPath, workerId, workerCount: WORKERS, failover: true });
}

/** The data of the events whose post resolved, as the `got` line a receiver prints. */
function resolvedEvents(child: ChildHandle, lines = child.lines): string[] {
  return lines
    .filter(line => line.startsWith('ok '))
    .map(line => `fo/tick ${JSON.stringify(line.slice(3))} remote`);
}

/** Leaves a socket file nobody listens on at `socketPath`, as a SIGKILLed broker does. */
async function staleSocket(socketPath: string): Promise<void> {
  const server = net.createServer();
  const temporary = `${socketPath}.tmp`;
  await new Promise<void>(resolve => server.listen(temporary, resolve));
  renameSync(temporary, socketPath);
  await new Promise<void>(resolve => server.close(() => resolve()));
}

function isBroker(child: ChildHandle, after = 0): boolean {
  return child.lines.slice(after).some(line => line === 'status connected broker');
}

/** Every live process has every event in `events` at least once. */
async function allReceived(live: ChildHandle[], events: string[]): Promise<void> {
  await waitFor(
    () =>
      live.every(child => {
        const got = new Set(received(child, 'fo'));
        return events.every(
          event => got.has(event.replace(/ remote$/, ' local')) || got.has(event),
        );
      }),
    {
      timeoutMs: 30_000,
      message: `every live process to receive ${events.length} events`,
    },
  );
}

/** Runs streams of posts on `posters` until each has `more` more resolved posts than now. */
async function streamUntil(posters: ChildHandle[], more: number): Promise<void> {
  const start = posters.map(child => resolvedEvents(child).length);
  await waitFor(
    () => posters.every((child, i) => resolvedEvents(child).length >= start[i] + more),
    {
      timeoutMs: 30_000,
      message: `${more} more resolved posts from every poster`,
    },
  );
}

describe('ipc e2e: broker failover between independent processes', () => {
  it('elects a new broker when the broker is SIGKILLed mid-stream (twice); no resolved post is lost; a restarted process joins as a worker', async () => {
    const socketPath = path.join(dir, 'fo.sock');
    const procs = await Promise.all(
      Array.from({ length: WORKERS }, (_, id) => failoverWorker(socketPath, id)),
    );
    const brokers = procs.filter(child => isBroker(child));
    expect(brokers).toHaveLength(1);
    const first = brokers[0];
    const others = procs.filter(child => child !== first);
    await waitFor(() => others.every(child => child.count('status connected worker') > 0));

    // A stream of posts from the others, the broker killed in the middle of it.
    others.forEach((child, i) =>
      command(child, { cmd: 'stream', source: 'fo', data: `a${procs.indexOf(child)}-${i}-` }),
    );
    await streamUntil(others, 20);
    const beforeKill = others.flatMap(child => resolvedEvents(child, [...child.lines]));
    const marks = others.map(child => child.lines.length);
    await first.kill('SIGKILL');

    const second = await waitFor(() => others.find((child, i) => isBroker(child, marks[i])), {
      timeoutMs: 30_000,
      message: 'a new broker elected among the survivors',
    });
    expect(others.filter((child, i) => isBroker(child, marks[i]))).toEqual([second]);
    // Every live process is connected to the new broker again.
    await waitFor(() =>
      others.every(
        (child, i) =>
          child === second || child.lines.slice(marks[i]).includes('status connected worker'),
      ),
    );
    await streamUntil(others, 20);
    // Every post that resolved before the kill reached every live process (at least once) ...
    await allReceived(others, beforeKill);
    // ... and so did everything posted since.
    await allReceived(
      others,
      others.flatMap(child => resolvedEvents(child, [...child.lines])),
    );

    // A second failover: the new broker is killed too, mid-stream.
    const survivors = others.filter(child => child !== second);
    const beforeSecond = survivors.flatMap(child => resolvedEvents(child, [...child.lines]));
    const marks2 = survivors.map(child => child.lines.length);
    await second.kill('SIGKILL');
    const third = await waitFor(() => survivors.find((child, i) => isBroker(child, marks2[i])), {
      timeoutMs: 30_000,
      message: 'a third broker elected',
    });
    await streamUntil(survivors, 20);
    await allReceived(survivors, beforeSecond);

    // The first broker's process comes back: it finds the lock taken and joins as a worker.
    const restarted = await failoverWorker(socketPath, procs.indexOf(first));
    await restarted.waitForLine('status connected worker');
    expect(isBroker(restarted)).toBe(false);
    const live = [...survivors, restarted];
    const marks3 = live.map(child => child.lines.length);
    await streamUntil(survivors, 10);
    survivors.forEach(child => command(child, { cmd: 'stop' }));
    await Promise.all(survivors.map(child => child.waitForLine('stopped')));
    // What was posted after the restart reaches all three, the restarted one included.
    const late = survivors.flatMap((child, i) =>
      resolvedEvents(child, child.lines.slice(marks3[i])),
    );
    await allReceived(live, late);
    await allReceived(
      survivors,
      survivors.flatMap(child => resolvedEvents(child)),
    );
    for (const child of survivors) expect(child.count(/^fail /)).toBe(0);
    expect(third.lines.some(line => line.includes('took over as the broker'))).toBe(true);
  }, 120_000);

  it('resends to the new broker what the dead one had not delivered everywhere: a worker down during the failover still gets it', async () => {
    const socketPath = path.join(dir, 'fo2.sock');
    const procs = await Promise.all(
      Array.from({ length: WORKERS }, (_, id) => failoverWorker(socketPath, id)),
    );
    const broker = procs.find(child => isBroker(child))!;
    const [poster, away, other] = procs.filter(child => child !== broker);
    const awayId = procs.indexOf(away);
    await waitFor(() => [poster, away, other].every(c => c.count('status connected worker') > 0));
    // A worker goes down; what is posted meanwhile waits in its queue at the broker ...
    await away.kill('SIGKILL');
    command(poster, { cmd: 'post', source: 'fo', event: 'tick', data: 'q', count: 30 });
    await poster.waitForLine('posted 30 0');
    // ... which dies with the broker; the posts resolved long ago.
    const marks = [poster, other].map(child => child.lines.length);
    await broker.kill('SIGKILL');
    await waitFor(() => [poster, other].some((child, i) => isBroker(child, marks[i])), {
      timeoutMs: 30_000,
    });
    const back = await failoverWorker(socketPath, awayId);
    const expected = Array.from({ length: 30 }, (_, i) => `fo/tick "q${i}" remote`);
    await allReceived([back, poster, other], expected);
    const replayed = async (): Promise<number> => {
      command(poster, { cmd: 'stats' });
      const line = await poster.waitForLine(/^stats /);
      poster.lines.splice(poster.lines.indexOf(line), 1);
      return (JSON.parse(line.slice(6)) as { transport: Record<string, number> }).transport
        .replayed;
    };
    expect(await replayed()).toBe(30);
  }, 60_000);

  it('two processes racing to become the broker: exactly one wins, 50 times', async () => {
    const racers = [spawnNode('test/fixtures/ipc/race.ts'), spawnNode('test/fixtures/ipc/race.ts')];
    await Promise.all(racers.map(child => child.waitForLine('ready')));
    for (let round = 0; round < 50; round++) {
      const socketPath = path.join(dir, `race${round}.sock`);
      // A stale socket file (a dead broker's) in place: both racers find it stale and want to unlink and bind.
      await staleSocket(socketPath);
      for (const child of racers) child.send(`go ${socketPath}`);
      const outcomes = await Promise.all(
        racers.map(child => child.waitForLine(new RegExp(`^(won|lost) ${socketPath}( |$)`))),
      );
      const winners = outcomes.filter(line => line.startsWith('won '));
      expect({ round, winners: winners.length }).toEqual({ round, winners: 1 });
      const winner = racers[outcomes.findIndex(line => line.startsWith('won '))];
      winner.send(`release ${socketPath}`);
      await winner.waitForLine(`released ${socketPath}`);
    }
  }, 60_000);
});

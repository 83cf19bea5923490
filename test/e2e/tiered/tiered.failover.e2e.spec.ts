import { killAllChildren, type ChildHandle } from '../../helpers/processes.js';
import { deleteRedisKeys } from '../../helpers/redis-cleanup.js';
import { uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';
import {
  brokerOf,
  command,
  got,
  groupReads,
  resolvedPosts,
  startHost,
  statsOf,
  type Host,
} from './tiered-helpers.js';

// A host's broker (and so its uplink) is SIGKILLed while every other process
// of both hosts posts: a survivor is elected, takes over the host's group and
// consumer (the cursor, and the entries the dead broker read but had not
// posted into the host), and relays again what the dead one may not have relayed.
const PREFIX = uniqueName('tiered_fo');
const WORKERS = 3;

afterAll(async () => {
  await killAllChildren();
  await deleteRedisKeys(`${PREFIX}*`);
});

const alive = (child: ChildHandle): boolean =>
  child.child.exitCode === null && child.child.signalCode === null;

it('a broker SIGKILLed under load: no resolved post of either host is lost, duplicates are counted', async () => {
  const stream = `${PREFIX}:events`;
  const hosts: Host[] = await Promise.all(
    ['a', 'b'].map(name => startHost({ name: `${PREFIX}-${name}`, workers: WORKERS, stream })),
  );
  const [hostA, hostB] = hosts;
  const brokerA = brokerOf(hostA)!;
  expect(brokerA).toBeDefined();
  const posters = hosts.flatMap(host => host.workers.filter(w => w !== brokerOf(host)));
  expect(posters).toHaveLength(2 * (WORKERS - 1));
  posters.forEach((poster, i) => command(poster, { cmd: 'stream', source: 'fo', data: `p${i}-` }));
  const resolvedCount = (): number[] => posters.map(p => resolvedPosts(p).length);
  await waitFor(() => resolvedCount().every(n => n >= 30), {
    message: '30 posts from each poster',
  });

  await brokerA.kill('SIGKILL');
  const atKill = resolvedCount();
  // A survivor of host A takes over the broker and the uplink.
  await waitFor(() => hostA.workers.some(w => alive(w) && w.count('broker-elected') > 0), {
    message: 'a survivor of host A to be elected',
  });
  await waitFor(() => resolvedCount().every((n, i) => n >= atKill[i] + 60), {
    timeoutMs: 30_000,
    message: '60 more posts from each poster after the kill',
  });
  for (const poster of posters) command(poster, { cmd: 'stop' });
  await waitFor(() => posters.every(p => p.count(/^stopped /) === 1), {
    message: 'streams stopped',
  });

  const resolved = posters.flatMap(resolvedPosts);
  const live = hosts.flatMap(host => host.workers).filter(alive);
  expect(live).toHaveLength(2 * WORKERS - 1);
  await waitFor(
    () =>
      live.every(w => {
        const seen = new Set(got(w, 'fo'));
        return resolved.every(data => seen.has(data));
      }),
    {
      timeoutMs: 30_000,
      message: `every live process of both hosts to get ${resolved.length} resolved posts`,
    },
  );
  // Handlers ran each event once per process: copies resent or read again were dropped by id.
  for (const w of live) {
    const data = got(w, 'fo');
    expect(data.length - new Set(data).size).toBe(0);
  }
  const stats = await Promise.all(live.map(statsOf));
  const sum = (name: string): number => stats.reduce((n, s) => n + (s[name] ?? 0), 0);
  // Host A's uplink restarted in the new broker, from the host group's cursor (no '$').
  expect(sum('tier.uplinkStarts')).toBe(2);
  const reads = await groupReads(stream);
  expect(Object.keys(reads).sort()).toEqual(hosts.map(h => `herald:tier:${h.name}`).sort());
  // What was resent or relayed again is counted where it was dropped.
  const duplicates = sum('duplicateIdsDropped') + sum('tier.networkDuplicates');
  expect(duplicates).toBeGreaterThanOrEqual(0);
  console.log(
    `tiered failover: ${resolved.length} resolved posts, ${sum('tier.relayedAgain')} relayed again, ` +
      `${sum('tier.networkDuplicates')} network duplicates dropped, ${sum('duplicateIdsDropped')} ipc copies dropped, ` +
      `${sum('uplink.subscriber.claimed')} entries the dead broker left pending claimed, ` +
      `${posters.reduce((n, p) => n + p.count(/^fail /), 0)} posts failed`,
  );
  void hostB;
}, 120_000);

import { killAllChildren } from '../../helpers/processes.js';
import { deleteRedisKeys } from '../../helpers/redis-cleanup.js';
import { uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';
import { command, got, groupReads, startHost, statsOf, type Host } from './tiered-helpers.js';

// Two "hosts" on this machine, each its own ipc socket and workers; the hosts
// meet through one redis stream, read once per host by the host's broker.
const PREFIX = uniqueName('tiered');
const WORKERS = 3;
let hosts: Host[] = [];

afterAll(async () => {
  await killAllChildren();
  await deleteRedisKeys(`${PREFIX}*`);
});

describe('tiered fan-out: 2 hosts x 3 workers over one redis stream', () => {
  const stream = `${PREFIX}:events`;

  beforeAll(async () => {
    hosts = await Promise.all(
      ['h1', 'h2'].map(name => startHost({ name: `${PREFIX}-${name}`, workers: WORKERS, stream })),
    );
  }, 60_000);

  it('every worker of both hosts gets every post exactly once; the network is read once per host', async () => {
    const posts: string[] = [];
    hosts.forEach((host, h) =>
      host.workers.forEach((worker, w) => {
        command(worker, { cmd: 'post', source: 'b', event: 'x', data: `h${h}w${w}-`, count: 5 });
        for (let i = 0; i < 5; i++) posts.push(`h${h}w${w}-${i}`);
      }),
    );
    const workers = hosts.flatMap(host => host.workers);
    await waitFor(() => workers.every(w => got(w, 'b').length >= posts.length), {
      timeoutMs: 20_000,
      message: `every worker to get ${posts.length} events`,
    });
    for (const worker of workers) expect(got(worker, 'b').sort()).toEqual([...posts].sort());
    expect(workers.every(w => w.count('posted 5 0') === 1)).toBe(true);
    // Each host's group read each entry once: 2 reads per event, not one per worker
    // (a host's own latest entries may still be on their way back to its reader).
    await waitFor(
      async () => {
        const reads = await groupReads(stream);
        return Object.values(reads).reduce((n, count) => n + count, 0) >= 2 * posts.length;
      },
      { message: 'both hosts to read every entry' },
    );
    const reads = await groupReads(stream);
    expect(Object.keys(reads).sort()).toEqual(hosts.map(host => `herald:tier:${host.name}`).sort());
    for (const count of Object.values(reads)) expect(count).toBe(posts.length);
    // Posts left each host once; the brokers skipped their own host's entries.
    let stats: Record<string, number>[] = [];
    await waitFor(
      async () => {
        stats = await Promise.all(workers.map(statsOf));
        return stats.reduce((n, s) => n + (s['tier.ownSkipped'] ?? 0), 0) >= posts.length;
      },
      { message: "both brokers to skip their own host's entries" },
    );
    const sum = (name: string): number => stats.reduce((n, s) => n + (s[name] ?? 0), 0);
    expect(sum('tier.relayed')).toBe(posts.length);
    expect(sum('tier.ownSkipped')).toBe(posts.length);
    expect(sum('tier.fromNetwork')).toBe(posts.length);
    expect(sum('tier.uplinkConnected')).toBe(2);
  });

  it('a unique post runs once across both hosts, whoever posts it and however often', async () => {
    for (const worker of hosts.flatMap(host => host.workers))
      command(worker, { cmd: 'post', source: 'u', event: 'refresh', data: 'r', unique: 'cache-1' });
    const workers = hosts.flatMap(host => host.workers);
    await waitFor(() => workers.every(w => w.count(/^posted 1 0/) >= 1), {
      message: 'every unique post to resolve',
    });
    await waitFor(() => workers.some(w => got(w, 'u').length > 0), {
      message: 'the unique event to run somewhere',
    });
    // Wait until every host's uplink has settled every copy, then count the runs.
    await waitFor(
      async () => {
        const reads = await groupReads(stream);
        const entries = Object.values(reads);
        return entries.length === 2 && entries.every(n => n === entries[0]);
      },
      { message: 'both hosts to have read every entry' },
    );
    await waitFor(
      async () => {
        const stats = await Promise.all(workers.map(statsOf));
        // Each host read the 6 posts; one copy won the key across both hosts.
        return (
          stats.reduce((n, s) => n + (s['uplink.duplicates'] ?? 0), 0) >= 2 * workers.length - 1
        );
      },
      { message: 'every other copy of the unique key to be dropped' },
    );
    expect(workers.reduce((n, w) => n + got(w, 'u').length, 0)).toBe(1);
  });
});

import pg from 'pg';
import { killAllChildren, type ChildHandle } from '../../helpers/processes.js';
import { PG_URL, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';
import {
  brokerOf,
  command,
  got,
  resolvedPosts,
  startHost,
  statsOf,
  type Host,
} from './tiered-helpers.js';

// PostgreSQL as the uplink: durable mode, each host reading the outbox from
// its own cursor (consumer `tier:<host>`), so a failover resumes there too.
const PREFIX = uniqueName('tiered_pg');
const TABLE = `${PREFIX}_outbox`;
const WORKERS = 3;
let hosts: Host[] = [];

afterAll(async () => {
  await killAllChildren();
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  for (const suffix of ['', '_consumers', '_dead'])
    await client.query(`DROP TABLE IF EXISTS "${TABLE}${suffix}"`);
  await client.query(`DROP TABLE IF EXISTS "${PREFIX}_unique"`);
  await client.end();
});

const alive = (child: ChildHandle): boolean =>
  child.child.exitCode === null && child.child.signalCode === null;

describe('tiered fan-out over a pg uplink (durable)', () => {
  beforeAll(async () => {
    const uplink = {
      transport: 'pg',
      pg: {
        connectionString: PG_URL,
        channel: PREFIX,
        uniqueTable: `${PREFIX}_unique`,
        durable: { table: TABLE, pollMs: 200 },
      },
    };
    hosts = await Promise.all(
      ['a', 'b'].map(name =>
        startHost({ name: `${PREFIX}-${name}`, workers: WORKERS, stream: '', uplink }),
      ),
    );
  }, 60_000);

  it('every worker of both hosts gets every post once; a unique post runs once across both', async () => {
    const workers = hosts.flatMap(host => host.workers);
    const posts: string[] = [];
    workers.forEach((worker, w) => {
      command(worker, { cmd: 'post', source: 'p', event: 'x', data: `w${w}-`, count: 5 });
      for (let i = 0; i < 5; i++) posts.push(`w${w}-${i}`);
    });
    await waitFor(() => workers.every(w => got(w, 'p').length >= posts.length), {
      timeoutMs: 20_000,
      message: `every worker to get ${posts.length} events`,
    });
    for (const worker of workers) expect(got(worker, 'p').sort()).toEqual([...posts].sort());
    for (const worker of workers)
      command(worker, { cmd: 'post', source: 'u', event: 'x', data: 'r', unique: 'pg-key' });
    await waitFor(() => workers.some(w => got(w, 'u').length > 0), {
      message: 'the unique event to run somewhere',
    });
    await waitFor(() => workers.every(w => w.count(/^posted 1 0/) >= 1), {
      message: 'every unique post to resolve',
    });
    // Both hosts' uplinks read the 6 copies; one claim won, the 11 others are counted as duplicates.
    await waitFor(
      async () => {
        const stats = await Promise.all(workers.map(statsOf));
        return (
          stats.reduce((n, st) => n + (st['uplink.duplicates'] ?? 0), 0) >= 2 * workers.length - 1
        );
      },
      { message: 'every other copy of the unique key to be dropped' },
    );
    expect(workers.reduce((n, w) => n + got(w, 'u').length, 0)).toBe(1);
  });

  it('a broker SIGKILLed under load: no resolved post is lost', async () => {
    const [hostA] = hosts;
    const brokerA = brokerOf(hostA)!;
    const posters = hosts.flatMap(host => host.workers.filter(w => w !== brokerOf(host)));
    posters.forEach((p, i) => command(p, { cmd: 'stream', source: 'fo', data: `p${i}-` }));
    await waitFor(() => posters.every(p => resolvedPosts(p).length >= 20), {
      message: '20 posts from each poster',
    });
    await brokerA.kill('SIGKILL');
    const atKill = posters.map(p => resolvedPosts(p).length);
    await waitFor(() => posters.every((p, i) => resolvedPosts(p).length >= atKill[i] + 40), {
      timeoutMs: 30_000,
      message: '40 more posts from each poster after the kill',
    });
    for (const poster of posters) command(poster, { cmd: 'stop' });
    await waitFor(() => posters.every(p => p.count(/^stopped /) === 1), {
      message: 'streams stopped',
    });
    const resolved = posters.flatMap(resolvedPosts);
    const live = hosts.flatMap(host => host.workers).filter(alive);
    await waitFor(
      () =>
        live.every(w => {
          const seen = new Set(got(w, 'fo'));
          return resolved.every(data => seen.has(data));
        }),
      { timeoutMs: 30_000, message: `every live process to get ${resolved.length} posts` },
    );
    for (const w of live) expect(got(w, 'fo').length).toBe(new Set(got(w, 'fo')).size);
  }, 90_000);
});

import { killAllChildren, type ChildHandle } from '../../helpers/processes.js';
import { deleteRedisKeys } from '../../helpers/redis-cleanup.js';
import { uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';
import {
  brokerOf,
  command,
  got,
  resolvedPosts,
  startHost,
  startTieredWorker,
  type Host,
} from './tiered-helpers.js';

// The host's group is durable: a broker that closes hands the uplink to the
// next one, and a host whose processes were all down catches up from its
// group's cursor when it comes back (never from '$').
const PREFIX = uniqueName('tiered_rs');
const WORKERS = 3;
const stream = `${PREFIX}:events`;
let hosts: Host[] = [];

afterAll(async () => {
  await killAllChildren();
  await deleteRedisKeys(`${PREFIX}*`);
});

beforeAll(async () => {
  hosts = await Promise.all(
    ['a', 'b'].map(name => startHost({ name: `${PREFIX}-${name}`, workers: WORKERS, stream })),
  );
}, 60_000);

const alive = (child: ChildHandle): boolean =>
  child.child.exitCode === null && child.child.signalCode === null;

async function exit(child: ChildHandle): Promise<void> {
  command(child, { cmd: 'exit' });
  await child.exited;
}

it('a broker that closes under load hands the uplink over: every resolved post reaches every live process', async () => {
  const [hostA, hostB] = hosts;
  const brokerA = brokerOf(hostA)!;
  const posters = [hostA.workers.find(w => w !== brokerA)!, hostB.workers[WORKERS - 1]];
  posters.forEach((poster, i) => command(poster, { cmd: 'stream', source: 'rs', data: `q${i}-` }));
  await waitFor(() => posters.every(p => resolvedPosts(p).length >= 20), {
    message: '20 posts from each poster',
  });
  await exit(brokerA);
  await waitFor(() => hostA.workers.some(w => alive(w) && w.count(/runs host .*'s uplink/) > 0), {
    message: 'a survivor of host A to run the uplink',
  });
  const atExit = posters.map(p => resolvedPosts(p).length);
  await waitFor(() => posters.every((p, i) => resolvedPosts(p).length >= atExit[i] + 40), {
    timeoutMs: 30_000,
    message: '40 more posts from each poster',
  });
  for (const poster of posters) command(poster, { cmd: 'stop' });
  await waitFor(() => posters.every(p => p.count(/^stopped /) === 1), {
    message: 'streams stopped',
  });
  const resolved = posters.flatMap(resolvedPosts);
  const live = hosts.flatMap(host => host.workers).filter(alive);
  await waitFor(() => live.every(w => resolved.every(data => got(w, 'rs').includes(data))), {
    timeoutMs: 30_000,
    message: `every live process to get ${resolved.length} posts`,
  });
  for (const w of live) expect(got(w, 'rs').length).toBe(new Set(got(w, 'rs')).size);
}, 90_000);

it("a host wholly down catches up from its group's cursor when it comes back", async () => {
  const [hostA, hostB] = hosts;
  for (const w of hostA.workers.filter(alive)) await exit(w);
  const poster = hostB.workers[0];
  command(poster, { cmd: 'post', source: 'cu', event: 'x', data: 'while-a-down-', count: 20 });
  await poster.waitForLine('posted 20 0');
  // Host A comes back: its first process is elected, resumes the group, posts the 20 into the host.
  const spec = { name: hostA.name, workers: WORKERS, stream };
  const back: ChildHandle[] = [];
  for (let id = 0; id < WORKERS; id++)
    back.push(await startTieredWorker(spec, hostA.socketPath, id));
  const expected = Array.from({ length: 20 }, (_, i) => `while-a-down-${i}`);
  await waitFor(() => back.every(w => expected.every(data => got(w, 'cu').includes(data))), {
    timeoutMs: 30_000,
    message: "host A's restarted processes to catch up on the 20 posts made while it was down",
  });
  for (const w of back) expect(got(w, 'cu').sort()).toEqual([...expected].sort());
}, 90_000);

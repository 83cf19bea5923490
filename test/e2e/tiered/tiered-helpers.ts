import path from 'node:path';
import { Redis } from 'ioredis';
import { spawnNode, type ChildHandle } from '../../helpers/processes.js';
import { REDIS_URL } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';
import { command, received, socketDir } from '../ipc/ipc-helpers.js';

export { command };

/** One "host": its own ipc socket, `workers` processes electing a broker, one uplink. */
export interface Host {
  readonly name: string;
  readonly socketPath: string;
  readonly workers: ChildHandle[];
}

export interface HostSpec {
  name: string;
  workers: number;
  stream: string;
  /** Extra redis options of the uplink. */
  redis?: Record<string, unknown>;
  /** The whole uplink instead of the redis one (host filled in), e.g. a pg uplink. */
  uplink?: Record<string, unknown>;
}

/** Starts one worker of a host (test/fixtures/ipc/worker.ts with an UPLINK) and waits until it is ready. */
export async function startTieredWorker(
  spec: HostSpec,
  socketPath: string,
  workerId: number,
): Promise<ChildHandle> {
  const child = spawnNode('test/fixtures/ipc/worker.ts', {
    env: {
      IPC_OPTIONS: JSON.stringify({
        socketPath,
        workerId,
        workerCount: spec.workers,
        failover: true,
      }),
      UPLINK: JSON.stringify(
        spec.uplink
          ? { ...spec.uplink, host: spec.name }
          : {
              transport: 'redis',
              host: spec.name,
              redis: { url: REDIS_URL, stream: spec.stream, ...spec.redis },
            },
      ),
    },
  });
  await child.waitForLine(/^ready /);
  return child;
}

/** Starts a host's workers one after the other (the first elects itself broker) and waits for its uplink. */
export async function startHost(spec: HostSpec): Promise<Host> {
  const socketPath = path.join(socketDir(), 'h.sock');
  const workers: ChildHandle[] = [];
  for (let id = 0; id < spec.workers; id++)
    workers.push(await startTieredWorker(spec, socketPath, id));
  await waitFor(() => workers.some(w => w.count(`runs host ${spec.name}'s uplink`) > 0), {
    message: `host ${spec.name}'s uplink to start`,
  });
  return { name: spec.name, socketPath, workers };
}

/** The `got` lines of a process for `source`, as data strings. */
export function got(child: ChildHandle, source: string): string[] {
  // `<source>/<event> <data json> local|remote`
  return received(child, source).map(
    line => JSON.parse(line.slice(line.indexOf(' ') + 1, line.lastIndexOf(' '))) as string,
  );
}

/** The data of the posts of a process that resolved (`ok <data>` lines of a stream). */
export function resolvedPosts(child: ChildHandle): string[] {
  return child.lines.filter(line => line.startsWith('ok ')).map(line => line.slice(3));
}

/** The process of a host that hosts its broker now (says `status connected broker` last among its statuses). */
export function brokerOf(host: Host): ChildHandle | undefined {
  return host.workers.find(w => {
    if (w.child.exitCode !== null || w.child.signalCode !== null) return false;
    const statuses = w.lines.filter(
      line => line.startsWith('status ') || line.startsWith('ready '),
    );
    return statuses.some(line => line === 'status connected broker' || line === 'ready broker');
  });
}

/** Asks a process for its transport stats and waits for the answer. */
export async function statsOf(child: ChildHandle): Promise<Record<string, number>> {
  const before = child.count(/^stats /);
  command(child, { cmd: 'stats' });
  await waitFor(() => child.count(/^stats /) > before, { message: 'stats' });
  const line = child.lines.filter(l => l.startsWith('stats ')).at(-1)!;
  return (JSON.parse(line.slice(6)) as { transport: Record<string, number> }).transport;
}

/** `entries-read` of every consumer group of `stream` (Redis 7), by group name. */
export async function groupReads(stream: string): Promise<Record<string, number>> {
  const redis = new Redis(REDIS_URL);
  try {
    const groups = (await redis.xinfo('GROUPS', stream)) as unknown[][];
    const out: Record<string, number> = {};
    for (const fields of groups) {
      const record: Record<string, unknown> = {};
      for (let i = 0; i < fields.length; i += 2) record[String(fields[i])] = fields[i + 1];
      out[String(record.name)] = Number(record['entries-read'] ?? 0);
    }
    return out;
  } finally {
    redis.disconnect();
  }
}

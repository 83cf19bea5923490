import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { PrivateRedis } from './private-redis.js';
import { waitFor } from './wait-for.js';

const run = promisify(execFile);

/** One line of `CLUSTER NODES`. */
export interface ClusterNodeInfo {
  readonly id: string;
  readonly port: number;
  readonly role: 'master' | 'slave';
  /** For a replica: the id of its master. */
  readonly masterId?: string;
  readonly failed: boolean;
  /** Slot ranges of a master, e.g. `[[0, 5460]]`. */
  readonly slots: readonly (readonly [number, number])[];
}

/** Sends one inline command to 127.0.0.1:`port` and returns the raw reply text. */
export function rawCommand(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no reply to ${command} from ${port}`));
    }, 5000);
    socket.once('error', error => {
      clearTimeout(timer);
      reject(error);
    });
    socket.once('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', chunk => {
      reply += chunk.toString();
      // A bulk reply: `$len\r\n<data>\r\n`; a simple one ends at its first CRLF.
      const bulk = /^\$(\d+)\r\n/.exec(reply);
      const done = bulk
        ? Buffer.byteLength(reply) >= bulk[0].length + Number(bulk[1]) + 2
        : reply.endsWith('\r\n');
      if (done) {
        clearTimeout(timer);
        socket.destroy();
        resolve(bulk ? reply.slice(bulk[0].length, -2) : reply.trim());
      }
    });
  });
}

/**
 * A throwaway Redis Cluster: 3 masters and 3 replicas, each a private
 * `redis-server` on a spare port (cluster-enabled, no persistence, node
 * timeout 1 s), joined with `redis-cli --cluster create --cluster-replicas 1`.
 * `stop()` kills every node and removes its data. Never the shared Redis.
 */
export class PrivateRedisCluster {
  readonly nodes: PrivateRedis[] = [];

  constructor(
    private readonly size = 6,
    private readonly nodeTimeoutMs = 1000,
  ) {}

  /** `[{ host, port }]` of every node, as ioredis's Cluster takes them. */
  get startupNodes(): { host: string; port: number }[] {
    return this.nodes.map(node => ({ host: '127.0.0.1', port: node.port }));
  }

  async start(): Promise<this> {
    for (let i = 0; i < this.size; i++)
      this.nodes.push(
        new PrivateRedis(
          [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            'nodes.conf',
            '--cluster-node-timeout',
            String(this.nodeTimeoutMs),
            // A replica may take over even after a long disconnection (tests kill masters).
            '--cluster-replica-validity-factor',
            '0',
          ],
          { persistence: false },
        ),
      );
    await Promise.all(this.nodes.map(node => node.start()));
    await run('redis-cli', [
      '--cluster',
      'create',
      ...this.nodes.map(node => `127.0.0.1:${node.port}`),
      '--cluster-replicas',
      '1',
      '--cluster-yes',
    ]);
    await this.waitHealthy();
    return this;
  }

  /**
   * Until every live node says `cluster_state:ok`, 3 masters serve the slots
   * and every live replica finished its sync (`master_link_status:up`).
   */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    await waitFor(
      async () => {
        for (const node of this.nodes) {
          if (!(await this.alive(node))) continue;
          const info = await rawCommand(node.port, 'CLUSTER INFO');
          if (!info.includes('cluster_state:ok')) return false;
        }
        const nodes = await this.topology();
        const masters = nodes.filter(n => n.role === 'master' && !n.failed);
        if (masters.filter(m => m.slots.length > 0).length !== 3) return false;
        // Replicas hold data only once their initial sync is done.
        for (const replica of nodes.filter(n => n.role === 'slave' && !n.failed)) {
          const info = await rawCommand(replica.port, 'INFO replication').catch(() => '');
          if (!info.includes('master_link_status:up')) return false;
        }
        return true;
      },
      { timeoutMs, intervalMs: 50, message: 'private redis cluster healthy' },
    );
  }

  private async alive(node: PrivateRedis): Promise<boolean> {
    try {
      return (await rawCommand(node.port, 'PING')) === '+PONG';
    } catch {
      return false;
    }
  }

  /** The cluster as a live node sees it (`CLUSTER NODES`). */
  async topology(): Promise<ClusterNodeInfo[]> {
    for (const node of this.nodes) {
      if (!(await this.alive(node))) continue;
      const text = await rawCommand(node.port, 'CLUSTER NODES');
      return text
        .split('\n')
        .filter(line => line.trim() !== '')
        .map(line => {
          const [id, address, flags, master, , , , , ...slots] = line.trim().split(' ');
          const port = Number(address.split('@')[0].split(':')[1]);
          return {
            id,
            port,
            role: flags.includes('master') ? 'master' : 'slave',
            masterId: master === '-' ? undefined : master,
            failed: flags.includes('fail'),
            slots: slots
              .filter(s => !s.startsWith('['))
              .map(s => {
                const [from, to] = s.split('-').map(Number);
                return [from, to ?? from] as const;
              }),
          } satisfies ClusterNodeInfo;
        });
    }
    throw new Error('no live cluster node');
  }

  /** The master serving `slot` and one of its replicas. */
  async ownerOf(slot: number): Promise<{ master: PrivateRedis; replica?: PrivateRedis }> {
    const nodes = await this.topology();
    const master = nodes.find(
      n => n.role === 'master' && !n.failed && n.slots.some(([a, b]) => slot >= a && slot <= b),
    );
    if (!master) throw new Error(`no master serves slot ${slot}`);
    const replica = nodes.find(n => n.masterId === master.id && !n.failed);
    const byPort = (port: number): PrivateRedis => this.nodes.find(n => n.port === port)!;
    return { master: byPort(master.port), replica: replica && byPort(replica.port) };
  }

  /** `CLUSTER KEYSLOT key`, asked of a live node. */
  async slotOf(key: string): Promise<number> {
    for (const node of this.nodes)
      if (await this.alive(node))
        return Number((await rawCommand(node.port, `CLUSTER KEYSLOT ${key}`)).replace(':', ''));
    throw new Error('no live cluster node');
  }

  /** Kills every node and removes its data. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map(node => node.stop()));
    this.nodes.length = 0;
  }
}

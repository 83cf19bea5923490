import { Cluster } from 'ioredis';
import { PrivateRedisCluster } from './private-redis-cluster.js';
it('starts', async () => {
  const c = await new PrivateRedisCluster().start();
  try {
    const t = await c.topology();
    console.log(JSON.stringify(t));
    const slot = await c.slotOf('{orders}');
    console.log(slot, (await c.ownerOf(slot)).master.port);
    const client = new Cluster(c.startupNodes);
    console.log(await client.xadd('{orders}', '*', 'a', '1'));
    client.disconnect();
  } finally { await c.stop(); }
}, 60000);

import { Redis } from 'ioredis';
import { REDIS_URL } from './services.js';

/**
 * Deletes the keys matching `pattern` (SCAN, never KEYS) from the shared
 * Redis: what a test file created under its uniqueName() prefix, so runs
 * never pile streams up in a server that keeps everything in memory.
 */
export async function deleteRedisKeys(pattern: string, url = REDIS_URL): Promise<number> {
  const redis = new Redis(url, { lazyConnect: true });
  await redis.connect();
  let deleted = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return deleted;
}

import { Cluster, type ClusterNode, type ClusterOptions, type RedisOptions } from 'ioredis';
import { invalidOption } from '../../common/options.validation.js';

// Redis Cluster mode: hash-tag rules for stream names, and the ioredis
// Cluster a RedisConnection opens with this package's settings.

/**
 * True when `name` carries a Redis Cluster hash tag: a `{` followed later
 * by a `}` with at least one character between (the first such pair is
 * what Redis hashes). @publicApi
 */
export function hasHashTag(name: string): boolean {
  return hashTagOf(name) !== undefined;
}

/** The hash tag Redis Cluster hashes for `name` (`'orders'` for `'shop:{orders}:x'`), if any. @publicApi */
export function hashTagOf(name: string): string | undefined {
  const open = name.indexOf('{');
  if (open < 0) return undefined;
  const close = name.indexOf('}', open + 1);
  return close > open + 1 ? name.slice(open + 1, close) : undefined;
}

/**
 * A key named after `name` that Redis Cluster hashes to `name`'s slot, so a
 * script may take both: `name` + `suffix` when `name` carries a hash tag
 * (the key's first tag is `name`'s); `name{name}` + `suffix` when it holds
 * no brace (the tag is all of `name`, which is hashed whole); undefined
 * otherwise (braces that make no tag).
 */
export function keyInSlotOf(name: string, suffix: string): string | undefined {
  if (hashTagOf(name) !== undefined) return name + suffix;
  if (!name.includes('{') && !name.includes('}')) return `${name}{${name}}${suffix}`;
  return undefined;
}

/**
 * In cluster mode, a stream name without a hash tag is refused: the stream
 * and the keys derived from it (`<stream>:dead`, used together in one
 * MULTI) must be in one slot, and key names are never rewritten.
 * @throws InvalidOptionsError naming the stream
 */
export function checkClusterStream(
  scope: string,
  name: string,
  options: { readonly cluster?: unknown },
): void {
  if (options.cluster === undefined || hasHashTag(name)) return;
  invalidOption(
    scope,
    'stream',
    `a name with a hash tag in cluster mode, e.g. '{${name}}' (the stream and its derived keys must share a slot)`,
    name,
  );
}

/** The settings this package relies on, for every node of a cluster; the app's cluster options under them. */
export function clusterClient(
  cluster: readonly (ClusterNode | string)[] | Cluster,
  extra: ClusterOptions | undefined,
  base: RedisOptions,
): Cluster {
  const given = cluster instanceof Cluster ? cluster.options : {};
  const nodes = cluster instanceof Cluster ? clusterSeeds(cluster) : [...cluster];
  const { lazyConnect, enableOfflineQueue, retryStrategy, ...nodeOptions } = base;
  return new Cluster(nodes, {
    clusterRetryStrategy: retryStrategy,
    retryDelayOnFailover: 50,
    retryDelayOnClusterDown: 50,
    retryDelayOnTryAgain: 50,
    retryDelayOnMoved: 0,
    ...given,
    ...extra,
    redisOptions: { ...given.redisOptions, ...extra?.redisOptions, ...nodeOptions },
    lazyConnect: lazyConnect ?? true,
    enableOfflineQueue: enableOfflineQueue ?? false,
    enableReadyCheck: true,
    scaleReads: 'master',
    // As on a standalone connection (see RedisConnection): ioredis's auto-pipelining drops call()'s command name.
    enableAutoPipelining: false,
  });
}

/** The startup nodes of an ioredis Cluster (its own list, else the nodes it knows now). */
export function clusterSeeds(cluster: Cluster): ClusterNode[] {
  const startup = (cluster as unknown as { startupNodes?: ClusterNode[] }).startupNodes;
  if (startup && startup.length > 0) return [...startup];
  return cluster.nodes().map(node => ({ host: node.options.host, port: node.options.port }));
}

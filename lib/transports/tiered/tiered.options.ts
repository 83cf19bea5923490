import { hostname } from 'node:os';
import {
  integerOption,
  invalidOption,
  objectOption,
  oneOfOption,
  optionsObject,
  stringOption,
} from '../../common/options.validation.js';

/**
 * The network side of a tiered layout (`ipc: { uplink: { ... } }`): the
 * transport between hosts that the host's ipc broker reads once for all the
 * host's workers. The `redis` field comes with `nest-herald/redis` and the
 * `pg` field with `nest-herald/pg` (declaration merging, as
 * `TransportSelection.redis`), so the root typings name neither driver.
 * @publicApi
 */
export interface TieredUplinkOptions {
  /**
   * The network transport: `'redis'` (its `redis` options; broadcast, read
   * through the host's group) or `'pg'` (its `pg` options; durable mode,
   * read from the host's outbox cursor).
   */
  transport: 'redis' | 'pg';
  /**
   * This host's name: the uplink's consumer group is `<group>:tier:<host>`
   * and its consumer `tier:<host>`, so a broker elected after a failover
   * takes over the host's cursor and what its predecessor left pending.
   * Every host of one stream needs its own name. @default os.hostname()
   */
  host?: string;
  /**
   * Events each process keeps (newest first) of those posted on its host,
   * to relay again if it is elected broker (the dead broker may not have
   * relayed them). @default the ipc `maxQueueLength`
   */
  relayMemory?: number;
}

/** {@link TieredUplinkOptions} checked, with defaults. */
export interface ResolvedTieredUplinkOptions {
  readonly transport: 'redis' | 'pg';
  readonly host: string;
  readonly relayMemory?: number;
  /** The network transport's own options, checked by that transport. */
  readonly network: Readonly<Record<string, unknown>>;
}

const SCOPE = 'ipc.uplink';

/** What the tier sets in the network transport's options itself: giving them is refused. */
const OWNED_BY_TIER = ['mode', 'instance', 'consumer', 'intake', 'layout', 'streams'] as const;

/** The host's name as the uplink uses it in group and consumer names: no spaces, no colons. */
const HOST_NAME = /^[A-Za-z0-9._-]{1,100}$/;

/**
 * Checks the uplink options: `transport` `'redis'` or `'pg'`, `host` a name
 * of letters, digits, `.`, `_`, `-` (1-100), `relayMemory` an integer >= 1,
 * the `redis` options free of what the tier sets itself (`mode`,
 * `instance`, `consumer`, `intake`, `layout`, `streams`), the `pg` options
 * without `durable: false`, `durable.consumer`, `hub` or `topics`.
 * @throws InvalidOptionsError
 */
export function resolveTieredUplinkOptions(input: unknown): ResolvedTieredUplinkOptions {
  if (input === undefined || input === null)
    invalidOption(SCOPE, 'options', "an object such as { transport: 'redis' }", input);
  const options = optionsObject<Record<string, unknown>>(SCOPE, input as Record<string, unknown>, [
    'transport',
    'host',
    'relayMemory',
    'redis',
    'pg',
  ]);
  const transport = oneOfOption(SCOPE, 'transport', options.transport, ['redis', 'pg'], undefined);
  if (transport === undefined)
    invalidOption(SCOPE, 'transport', "'redis' or 'pg' (the network transport)", options.transport);
  const other = transport === 'redis' ? 'pg' : 'redis';
  if (options[other] !== undefined)
    invalidOption(SCOPE, other, `left out with transport '${transport}'`, options[other]);
  const host = stringOption(SCOPE, 'host', options.host, undefined) ?? defaultHost();
  if (!HOST_NAME.test(host))
    invalidOption(SCOPE, 'host', 'letters, digits, ".", "_" or "-" (1 to 100 of them)', host);
  const relayMemory =
    options.relayMemory === undefined
      ? undefined
      : integerOption(SCOPE, 'relayMemory', options.relayMemory, 1, 1);
  const network = (objectOption(SCOPE, transport, options[transport]) ?? {}) as Record<
    string,
    unknown
  >;
  // Keys the tier sets itself: refused when given, naming them and the value.
  const refuse = (keys: readonly string[], why: string): void => {
    for (const key of keys)
      if (network[key] !== undefined)
        invalidOption(SCOPE, `${transport}.${key}`, `left out (${why})`, network[key]);
  };
  if (transport === 'redis') {
    refuse(
      OWNED_BY_TIER,
      'the tier reads in broadcast mode through a group and consumer named after the host',
    );
  } else {
    // pg: durable mode, under the host's consumer name (the cursor a failover resumes from).
    const durable = network.durable;
    if (durable === false)
      invalidOption(
        SCOPE,
        'pg.durable',
        "true or an object: the uplink reads the outbox from the host's cursor",
        durable,
      );
    const consumer =
      typeof durable === 'object' && durable !== null
        ? (durable as Record<string, unknown>).consumer
        : undefined;
    if (consumer !== undefined)
      invalidOption(
        SCOPE,
        'pg.durable.consumer',
        'left out (the tier names the consumer after the host)',
        consumer,
      );
    refuse(['hub', 'topics'], 'the uplink owns its hub and reads herald events only');
  }
  return { transport, host, relayMemory, network };
}

/** os.hostname() with what a group name cannot carry replaced. */
function defaultHost(): string {
  return (
    hostname()
      .replace(/[^A-Za-z0-9._-]/g, '-')
      .slice(0, 100) || 'host'
  );
}

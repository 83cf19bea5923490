import { createHash } from 'node:crypto';
import { PG_TOPIC_PATTERN } from '../../transports/pg/pg.constants.js';
import { InvalidPatternError } from '../microservice.errors.js';

/** Prefix of the channels of object patterns and of client reply channels. */
export const PG_OBJECT_CHANNEL_PREFIX = 'nest_';
export const PG_REPLY_CHANNEL_PREFIX = 'nest_reply_';

/**
 * The channel a route travels on. A string pattern is the channel itself, so
 * database triggers and pg-hub services can `pg_notify` it: it must be a
 * lower-case identifier of at most 63 bytes, anything else PostgreSQL would
 * fold or cut. An object pattern travels on `nest_<sha1 of its route>`.
 * @publicApi
 */
export function pgChannelOf(route: string, pattern: unknown): string {
  if (pattern !== null && typeof pattern === 'object') {
    return PG_OBJECT_CHANNEL_PREFIX + createHash('sha1').update(route).digest('hex');
  }
  if (!PG_TOPIC_PATTERN.test(route)) {
    throw new InvalidPatternError(
      pattern,
      `a string pattern is a PostgreSQL channel and must match ${String(PG_TOPIC_PATTERN)} ` +
        '(other names are folded to lower case or cut at 63 bytes)',
    );
  }
  if (route.startsWith(PG_REPLY_CHANNEL_PREFIX)) {
    throw new InvalidPatternError(pattern, `${PG_REPLY_CHANNEL_PREFIX}* channels carry replies`);
  }
  return route;
}

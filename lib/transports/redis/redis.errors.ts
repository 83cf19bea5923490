import { HeraldError, InvalidOptionsError } from '../../common/errors.js';
import { describeValue } from '../../common/options.validation.js';
import { isError } from '../../common/describe-error.js';

/** A stream name that is missing or empty (the original's `ErrEmptyStream`). @publicApi */
export class EmptyStreamError extends InvalidOptionsError {
  constructor(value?: unknown) {
    super(
      `stream name cannot be empty: stream must be a non-empty string (got ${describeValue(value)})`,
    );
  }
}

/** A subscriber name that is missing or empty (the original's `ErrEmptyName`). @publicApi */
export class EmptySubscriberNameError extends InvalidOptionsError {
  constructor(value?: unknown) {
    super(
      `subscriber name cannot be empty: name must be a non-empty string (got ${describeValue(value)})`,
    );
  }
}

/**
 * An event dropped from the publisher's full buffer to make room for a newer
 * one (the oldest goes first). `publishAndWait` rejects with it. @publicApi
 */
export class EventDroppedError extends HeraldError {
  constructor(readonly bufferSize: number) {
    super(`publish buffer full (${bufferSize}): the oldest event was dropped`);
  }
}

/** An event still buffered when `close()` gave up draining. @publicApi */
export class EventNotWrittenError extends HeraldError {
  constructor(reason = 'publisher closed before the event was written') {
    super(reason);
  }
}

/**
 * A stream entry a decoder cannot read (a missing field, a bad value).
 * `field` names the culprit. @publicApi
 */
export class StreamEntryError extends HeraldError {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`stream entry field '${field}': ${reason}`);
  }
}

/**
 * An entry whose `operation` no handler knows. Subscribers skip it (and
 * count it) without retrying: throw it from a handler to do the same. @publicApi
 */
export class UnknownOperationError extends HeraldError {
  constructor(readonly operation: string) {
    super(`unknown operation '${operation}'`);
  }
}

/** The Redis Cluster redirections and states this package can name. */
export type ClusterReply = 'MOVED' | 'ASK' | 'CLUSTERDOWN' | 'CROSSSLOT';

/** Which cluster reply a Redis error is, if it is one. */
export function clusterReplyOf(error: unknown): ClusterReply | undefined {
  const message = isError(error) ? error.message : String(error);
  const match = /^(MOVED|ASK|CLUSTERDOWN|CROSSSLOT)\b/.exec(message);
  return match ? (match[1] as ClusterReply) : undefined;
}

/**
 * A reply only a Redis Cluster node gives (`MOVED`, `ASK`, `CLUSTERDOWN`,
 * `CROSSSLOT`) on a connection not in cluster mode (`url` pointed at a
 * cluster node): the write or read fails with this error, named, instead of
 * being taken for something else. In cluster mode (the `cluster` option)
 * redirections are followed and never surface. @publicApi
 */
export class RedisClusterError extends HeraldError {
  constructor(
    readonly reply: ClusterReply,
    readonly redisMessage: string,
  ) {
    super(
      `redis answered ${reply} (${redisMessage}): this is a Redis Cluster node, and this connection is not in cluster mode; give the cluster's nodes in the \`cluster\` option (stream names with a {hash tag}), or point \`url\` at a standalone Redis or a Sentinel-managed primary`,
    );
  }
}

/**
 * An entry no handler could read: not valid UTF-8, or a codec / layout
 * decoder failed. Dead-lettered at once (group mode) or skipped (fan-out),
 * never retried as a handler failure. @publicApi
 */
export class UndecodableEntryError extends HeraldError {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`stream entry field '${field}': ${reason}`);
  }
}

/**
 * True for an error that says the entry cannot be decoded: a
 * {@link StreamEntryError}, an {@link UndecodableEntryError}, or any error
 * carrying `undecodable: true` (how a codec failure reaches the transport
 * from the bus).
 */
export function isUndecodable(error: unknown): boolean {
  return (
    error instanceof StreamEntryError ||
    error instanceof UndecodableEntryError ||
    (typeof error === 'object' &&
      error !== null &&
      (error as { undecodable?: unknown }).undecodable === true)
  );
}

/**
 * A post written to its stream but not confirmed by `waitReplicas` replicas
 * within `waitTimeoutMs` (`WAIT`): the entry exists on the master and may be
 * lost if that master fails before replicating it. Re-posting may duplicate
 * it. @publicApi
 */
export class ReplicasNotConfirmedError extends HeraldError {
  constructor(
    readonly id: string,
    readonly confirmed: number,
    readonly wanted: number,
  ) {
    super(
      `entry ${id} written but confirmed by ${confirmed} of ${wanted} replica(s) in time: it may be lost if its master fails now`,
    );
  }
}

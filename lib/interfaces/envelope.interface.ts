/**
 * What travels. A transport moves envelopes; it never looks inside `payload`,
 * which is the codec's encoding of the event data.
 * @publicApi
 */
export interface Envelope {
  /** Unique per event (a UUID), so no layer ever folds two posts into one. */
  readonly id: string;
  /** Non-empty, never `'*'`. */
  readonly source: string;
  /** Non-empty, never `'*'`. */
  readonly event: string;
  /** The data, encoded by the bus's codec (JSON text by default; `''` for no data). */
  readonly payload: string;
  /** Ordered int64 key (pg-hub's key); decimal strings on text wires. */
  readonly key?: readonly bigint[];
  /** When set, one process runs it and repeats within the TTL are dropped. */
  readonly unique?: string;
  /** host + pid + per-process instance id of the poster. */
  readonly origin: string;
  /** ISO-8601 time the event was posted. */
  readonly occurredAt: string;
  /** Small string metadata such as `traceparent`. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Per-post options for this process's transport; never sent. */
  readonly transportOptions?: TransportPostOptions;
}

/**
 * A database client of the poster's, inside a transaction: a node-postgres
 * `PoolClient`/`Client`, or anything with the same `query` (TypeORM's
 * `QueryRunner` and `EntityManager` fit as they are). @publicApi
 */
export interface TransactionClient {
  query(text: string, values?: unknown[]): Promise<unknown>;
}

/** Options of one post for the transport, carried beside the envelope and never sent. @publicApi */
export interface TransportPostOptions {
  /** Send the event inside this transaction: delivered if and only if it commits. */
  readonly tx?: TransactionClient;
}

/**
 * What a handler receives as its second argument: the envelope with its data
 * decoded. `local` is true for `postLocal` events (the very object, never
 * encoded).
 * @publicApi
 */
export interface HeraldEvent<T = unknown> {
  readonly id: string;
  readonly source: string;
  readonly event: string;
  readonly data: T;
  readonly key?: readonly bigint[];
  readonly unique?: string;
  readonly origin: string;
  readonly occurredAt: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly local: boolean;
  /** How many times the transport has delivered this event (1 = first). */
  readonly attempt: number;
}

/**
 * An event handler: called with the data and the whole event. Its return
 * value is ignored unless it is a promise, which the bus awaits to settle.
 * @publicApi
 */
export type EventHandler<T = unknown> = (data: T, event: HeraldEvent<T>) => unknown;

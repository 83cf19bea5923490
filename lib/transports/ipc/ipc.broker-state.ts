import type net from 'node:net';
import { Fifo } from '../../common/fifo.js';
import { MAX_HELLO_BYTES } from './ipc.constants.js';
import { FrameReader, FrameWriter } from './ipc.frame.js';

/*
 * The broker's state records: per worker id (slot, queue entries, poster
 * records, sessions) and per connection. Plain data in one file because
 * they point at each other; the broker's parts (queues, backlog, writes,
 * offenders) act on them.
 */

/** A poster (worker id + client session) and its accepted events not yet delivered everywhere. */
export interface Poster {
  readonly slotId: number;
  readonly session: string;
  /** Its entries not yet let go of by every queue they went into, in seq order. */
  readonly records: Fifo<QueueEntry>;
}

/**
 * An event in the worker queues: one object, shared by every queue it went
 * into, that is also its poster's delivery record when `poster` is set (one
 * object per event, not two: the broker's garbage is mostly these). The
 * record is counted down as each queue lets go of it (acknowledged or
 * dropped); when every record in front is done, the poster is told
 * (DELIVERED) and stops keeping the frame for a resend to a next broker.
 * No poster: the broker's own posts, and events no queue waits on.
 */
export interface QueueEntry {
  readonly body: Buffer;
  /** Placement number: the queues of worker ids seen before it count towards its record. */
  readonly placed: number;
  readonly poster: Poster | undefined;
  /** The poster's seq (0 without a poster). */
  readonly seq: number;
  /** Queues that still hold it and count towards its record. */
  refs: number;
  /** A worker other than the broker's own process acknowledged it (and keeps a copy): a broker-process post is safe. */
  witnessed: boolean;
}

/** What the broker keeps per client session (process) of a worker id: never reset by a reconnect. */
export interface SessionState {
  lastSeqIn: number;
  rejected: Fifo<number>;
  poster: Poster;
}

/** One worker id's state, kept across its connections and its process restarts. */
export interface WorkerSlot {
  readonly id: number;
  /** Events not yet acknowledged by the worker; entry i has seq `headSeq + i`. */
  readonly queue: Fifo<QueueEntry>;
  headSeq: number;
  /** Highest seq written to the current connection. */
  sentSeq: number;
  connection?: BrokerConnection;
  /** The worker process (client session) last seen with this id. */
  session?: string;
  /** Highest seq accepted from that session: resends at or below it are dropped. */
  lastSeqIn: number;
  /**
   * Seqs of that session rejected (queue full) and perhaps not yet known to
   * it: told again on reconnect, so a lost REJECT never turns into a success.
   */
  rejected: Fifo<number>;
  highWater: number;
  /** Earlier sessions of this worker id (their dedup state), at most SESSIONS_PER_WORKER. */
  readonly sessions: Map<string, SessionState>;
  /** The current session's poster record (for DELIVERED). */
  poster?: Poster;
  /**
   * Placements made before this worker id first connected to this broker
   * life; a queue counts towards delivery only for later ones, so a worker
   * that died for good (the previous broker's own process) holds nothing back.
   */
  seenAt?: number;
}

/** A fresh slot for worker id `id`. */
export function newSlot(id: number): WorkerSlot {
  return {
    id,
    queue: new Fifo<QueueEntry>(),
    headSeq: 1,
    sentSeq: 0,
    lastSeqIn: 0,
    rejected: new Fifo<number>(),
    highWater: 0,
    sessions: new Map(),
  };
}

/** An event waiting at the broker for room in a connected worker's queue. */
export interface Waiting {
  readonly seq: number;
  readonly body: Buffer;
  readonly unique: string | undefined;
  readonly deadline: number;
}

/**
 * The broker's side of one client connection: its frame reader and writer,
 * what was agreed in the handshake, and what is due to it (acks, DELIVERED,
 * WITNESSED, RELEASED). Plain state; the broker's parts act on it.
 */
export class BrokerConnection {
  readonly reader = new FrameReader(MAX_HELLO_BYTES);
  readonly writer = new FrameWriter();
  slot?: WorkerSlot;
  pid = 0;
  window = 0;
  postTimeoutMs = 0;
  /** Highest seq of this client processed (accepted, dropped as duplicate, or rejected) and not yet acked. */
  ackDue = 0;
  ackSent = 0;
  /** The client's session, once its HELLO was read. */
  session?: string;
  /** Highest seq of this poster delivered to every queue it went into, as last told. */
  deliveredSent = 0;
  /** When the latest bytes arrived; a waiting event times out postTimeoutMs after it. */
  chunkAt = 0;
  /** Events that found a connected worker's queue full, in arrival order (at most the client's send window). */
  readonly backlog = new Fifo<Waiting>();
  holdTimer?: NodeJS.Timeout;
  /** Closes the connection when no HELLO came in time. */
  handshakeTimer?: NodeJS.Timeout;
  /** Highest broker-process seq told (WITNESSED to the host, RELEASED to the others). */
  witnessedSent = 0;
  releasedSent = 0;
  closing = false;
  /** Seq of the event frame being handled (0 for others), to name it in a refusal. */
  currentSeq = 0;

  constructor(
    readonly socket: net.Socket,
    readonly id: number,
  ) {}

  describe(): string {
    return this.slot ? `worker #${this.slot.id} (pid ${this.pid})` : `connection ${this.id}`;
  }
}

/** Wire protocol version; a broker refuses a client that speaks another. */
export const IPC_PROTOCOL_VERSION = 3;
/** 'HRLD': the first four bytes of a HELLO, so a stray client is told apart from an old one. */
export const IPC_MAGIC = 0x48524c44;

/** Frame types. A frame is `u32 length | u8 type | body`; length counts type and body. */
export const FrameType = {
  /** client -> broker: magic, version, workerId, pid, lastReceived, ackedSeq, window, postTimeoutMs, session. */
  Hello: 1,
  /**
   * broker -> client: version, lastSeqIn, maxFrameBytes, workerCount, sendWindow, brokerSession,
   * u8 flags (1 = this client's process hosts the broker) (after any REJECT it may have missed).
   */
  Welcome: 2,
  /** client -> broker: seq, event body. */
  Event: 3,
  /**
   * broker -> client: seq (per worker), u8 flags, [u48 hostSeq when flags & 1], event body.
   * Flag 1: posted by the broker's own process; the receiver keeps a copy
   * (a witness) until RELEASED passes hostSeq, to resend it to a next broker.
   */
  Deliver: 4,
  /** either way: cumulative ack of a seq. */
  Ack: 5,
  /** broker -> client: this seq was not accepted (queue full); the ack still passes it. */
  Reject: 6,
  /** broker -> client: a frame was refused (seq 0 when unknown); the broker closes the connection. */
  Refuse: 7,
  /**
   * broker -> client: every event of this client up to seq left every worker
   * queue it went into (acknowledged or dropped); the client keeps copies of
   * acknowledged events until then, to resend them to a next broker.
   */
  Delivered: 8,
  /**
   * broker -> the client of its own process: every post of it up to seq is
   * held by another live process (a witness) or left every worker queue;
   * that client resolves its posts on this, not on the ack.
   */
  Witnessed: 9,
  /** broker -> every other client: the broker process's posts up to seq left every worker queue; drop their copies. */
  Released: 10,
} as const;

/** DELIVER flag: a post of the broker's own process, to keep as a witness copy. */
export const DELIVER_WITNESS = 1;
/** WELCOME flag: the client's process hosts this broker. */
export const WELCOME_HOST = 1;

/** u32 length + u8 type. */
export const FRAME_HEADER_BYTES = 5;
/** Sequence numbers travel as 48-bit unsigned integers (2^48: centuries at a million events/s). */
export const SEQ_BYTES = 6;
/** Room for an event's metadata (id, names, origin, key, headers) beyond its payload. */
export const METADATA_ALLOWANCE_BYTES = 65_536;
/** The protocol's hard ceiling on `maxPayloadBytes`, as in the original (24-bit frame lengths). */
export const MAX_PAYLOAD_LIMIT = 16 * 1024 * 1024 - 1;
/** A HELLO is small; anything bigger before the handshake is refused. */
export const MAX_HELLO_BYTES = 1024;

export const DEFAULT_MAX_QUEUE_LENGTH = 10_240;
/**
 * A worker's posts not yet answered by the broker (sent, or waiting behind
 * a full window) are bounded by the larger of this and 4 x (maxQueueLength
 * + the broker's window); beyond it a post fails at once with QueueFullError.
 */
export const MAX_UNANSWERED_POSTS = 16_384;
export const DEFAULT_MAX_PAYLOAD_BYTES = 65_536;
export const DEFAULT_POST_TIMEOUT_MS = 5_000;
/** Unix socket paths are limited to 108 bytes including the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;

/** A connection must complete its HELLO within this long, or it is closed (half-open and idle sockets hold descriptors). */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5_000;
/**
 * Ids of events this process handled recently: a copy resent after a
 * failover (by its poster or a witness) that was already handled is dropped.
 * 65,536 ids cover several full queues (10,240 by default) of every worker.
 */
export const HANDLED_IDS_CACHE_SIZE = 65_536;
/** Sessions remembered per worker id for the resend dedup (a worker id's processes across restarts). */
export const SESSIONS_PER_WORKER = 16;

/** Reconnect delays: random in [min, max], the range doubling per failed attempt up to the cap. */
export const RECONNECT_MIN_MS = 10;
export const RECONNECT_MAX_MS = 50;
export const RECONNECT_CAP_MS = 1_000;

/** Env vars that carry a worker's identity from `forkWorkers` (or pm2) to the transport. */
export const ENV_WORKER_ID = 'HERALD_WORKER_ID';
export const ENV_WORKER_COUNT = 'HERALD_WORKER_COUNT';
export const ENV_SOCKET_PATH = 'HERALD_IPC_SOCKET';
export const ENV_PM2_INSTANCE = 'NODE_APP_INSTANCE';

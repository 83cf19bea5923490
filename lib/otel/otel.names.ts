/** The name  of the tracer and the meter. */
export const INSTRUMENTATION_SCOPE = 'nest-herald';

/** `messaging.system` of every span (the transport is in `herald.transport`). */
export const MESSAGING_SYSTEM = 'nest-herald';

/**
 * The metric names, in OpenTelemetry form (Prometheus shows them with `_`
 * for `.`, counters with `_total`, durations with `_seconds`). @publicApi
 */
export const HERALD_METRICS = {
  posted: 'herald.events.posted',
  publishFailed: 'herald.events.publish_failed',
  delivered: 'herald.events.delivered',
  handled: 'herald.events.handled',
  failed: 'herald.events.failed',
  dropped: 'herald.events.dropped',
  lost: 'herald.events.lost',
  deadLettered: 'herald.events.dead_lettered',
  handlerDuration: 'herald.handler.duration',
  publishDuration: 'herald.publish.duration',
  queueDepth: 'herald.queue.depth',
  queueHighWater: 'herald.queue.high_water',
  inFlight: 'herald.events.in_flight',
  running: 'herald.handlers.running',
  transportStat: 'herald.transport.stat',
  groupLag: 'herald.redis.group_lag',
  reconnects: 'herald.transport.reconnects',
  failovers: 'herald.ipc.failovers',
  ffiCalls: 'herald.ffi.calls',
  ffiQueueDepth: 'herald.ffi.queue_depth',
} as const;

/**
 * Which `stats()` keys of a transport feed the named metrics: the first key
 * present wins. Every numeric key is exported as `herald.transport.stat`
 * too, `stat` naming it, so a figure a transport adds shows up unasked.
 */
export const STAT_KEYS = {
  lost: ['lost'],
  deadLettered: ['deadLettered'],
  groupLag: ['subscriberLag', 'groupLag', 'lag'],
  reconnects: ['reconnects', 'disconnectCount'],
  failovers: ['failovers', 'elections'],
} as const;

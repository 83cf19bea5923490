/**
 * The bus's default bound of each buffer (`maxPending`): posts waiting for
 * the transport, events waiting for dispatch. Here, below the bus and the
 * transports, because a transport's own defaults stay within it (the redis
 * transport's `maxInFlight`: an entry read past it would wait in a full
 * buffer, and be nacked and read again).
 */
export const DEFAULT_MAX_PENDING = 10_240;

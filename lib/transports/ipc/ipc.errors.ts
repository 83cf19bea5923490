import { HeraldError } from '../../common/errors.js';

/**
 * The socket directory or file fails the safety checks (not ours, a symlink,
 * open to others, not a socket), or another broker already listens there.
 * @publicApi
 */
export class IpcSocketError extends HeraldError {}

/**
 * The broker refused a frame (malformed, over the limit, out of protocol)
 * and closed the connection; the post that sent it is rejected and never
 * resent. @publicApi
 */
export class IpcFrameRefusedError extends HeraldError {}

/** A frame that does not follow the protocol; the reader stops at it. */
export class IpcProtocolError extends HeraldError {}

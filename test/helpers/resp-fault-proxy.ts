import type net from 'node:net';
import { TcpProxy } from './tcp-proxy.js';

/**
 * The end of the RESP value (RESP2, or RESP3 after HELLO 3) that starts at
 * `at` in `data`, or -1 while it has not all arrived.
 */
export function respEnd(data: Buffer, at: number): number {
  if (at >= data.length) return -1;
  const line = data.indexOf('\r\n', at);
  if (line < 0) return -1;
  const after = line + 2;
  switch (data[at]) {
    case 0x2b: // + simple string
    case 0x2d: // - error
    case 0x3a: // : integer
    case 0x5f: // _ null
    case 0x23: // # boolean
    case 0x2c: // , double
    case 0x28: // ( big number
      return after;
    case 0x24: // $ bulk string ($-1: nil)
    case 0x21: // ! bulk error
    case 0x3d: {
      // = verbatim string
      const length = Number(data.toString('latin1', at + 1, line));
      if (length < 0) return after;
      const end = after + length + 2;
      return end <= data.length ? end : -1;
    }
    case 0x2a: // * array (*-1: nil), of any values
    case 0x7e: // ~ set
    case 0x3e: // > push
    case 0x25: // % map: twice as many values
    case 0x7c: {
      // | attributes: a map, then the value they describe
      const pairs = data[at] === 0x25 || data[at] === 0x7c ? 2 : 1;
      const count = pairs * Number(data.toString('latin1', at + 1, line));
      let next = after;
      for (let i = 0; i < count; i++) {
        next = respEnd(data, next);
        if (next < 0) return -1;
      }
      return data[at] === 0x7c ? respEnd(data, next) : next;
    }
    default:
      throw new Error(`not RESP at byte ${at}: ${data[at]}`);
  }
}

/** The first `count` arguments of a command (a RESP array of bulk strings), as text. */
export function commandArgs(command: Buffer, count: number): string[] {
  const args: string[] = [];
  let at = command.indexOf('\r\n') + 2;
  while (args.length < count && at < command.length) {
    const line = command.indexOf('\r\n', at);
    const length = Number(command.toString('latin1', at + 1, line));
    args.push(command.toString('latin1', line + 2, line + 2 + length));
    at = line + 2 + length + 2;
  }
  return args;
}

interface Refusal {
  readonly match: (args: readonly string[]) => boolean;
  readonly error: string;
  left: number;
}

/**
 * A proxy in front of a real Redis that reads the RESP of both directions,
 * so a test can have the next commands it picks answered with an error
 * reply of Redis's own (`BUSY`, `OOM`, `LOADING`...) as when the server is in
 * that state for a moment, while every other command goes to Redis and
 * every reply reaches the client in command order. For request-reply
 * connections (not pub/sub); `cut`, `reset` and `close` as {@link TcpProxy}'s
 * (not `blackhole`).
 */
export class RespFaultProxy extends TcpProxy {
  private readonly refusals: Refusal[] = [];
  /** Commands answered by the proxy so far. */
  refused = 0;

  /**
   * The next `times` commands that `match` accepts (given the command's
   * first two arguments: its name as sent, then the first argument) are
   * answered `-<error>` by the proxy and never reach Redis.
   */
  refuse(match: (args: readonly string[]) => boolean, error: string, times = 1): void {
    this.refusals.push({ match, error, left: times });
  }

  private refusalFor(command: Buffer): Refusal | undefined {
    if (this.refusals.length === 0) return undefined;
    const args = commandArgs(command, 2);
    const refusal = this.refusals.find(r => r.left > 0 && r.match(args));
    if (refusal) refusal.left--;
    return refusal;
  }

  protected override join(client: net.Socket, upstream: net.Socket): void {
    // One slot per command, in order: its reply once known (Redis's, or the proxy's).
    const replies: (Buffer | undefined)[] = [];
    let fromClient: Buffer = Buffer.alloc(0);
    let fromServer: Buffer = Buffer.alloc(0);
    const flush = (): void => {
      while (replies.length > 0 && replies[0] !== undefined) client.write(replies.shift()!);
    };
    client.on('data', (chunk: Buffer) => {
      fromClient = fromClient.length === 0 ? chunk : Buffer.concat([fromClient, chunk]);
      let at = 0;
      for (let end = respEnd(fromClient, at); end >= 0; end = respEnd(fromClient, at)) {
        const command = fromClient.subarray(at, end);
        const refusal = this.refusalFor(command);
        if (refusal) {
          this.refused++;
          replies.push(Buffer.from(`-${refusal.error}\r\n`));
        } else {
          replies.push(undefined);
          upstream.write(command);
        }
        at = end;
      }
      fromClient = fromClient.subarray(at);
      flush();
    });
    upstream.on('data', (chunk: Buffer) => {
      fromServer = fromServer.length === 0 ? chunk : Buffer.concat([fromServer, chunk]);
      let at = 0;
      for (let end = respEnd(fromServer, at); end >= 0; end = respEnd(fromServer, at)) {
        replies[replies.indexOf(undefined)] = Buffer.from(fromServer.subarray(at, end));
        at = end;
      }
      fromServer = fromServer.subarray(at);
      flush();
    });
  }
}

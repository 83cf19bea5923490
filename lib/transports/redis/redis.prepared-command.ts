import { Command, type Redis } from 'ioredis';
import { loadingOnNoScript, type LuaScript } from './redis.scripts.js';

/**
 * A script call whose bytes (RESP) the caller wrote itself, for calls with
 * one argument per event value: ioredis's own serialization costs a few
 * string joins and a `Buffer.byteLength` per argument, then copies them all
 * into one Buffer; here an argument is `$<bytes>\r\n`, its bytes written
 * where they go, and `\r\n`.
 *
 * The arguments after the keys are written by the caller between
 * {@link ScriptCallWriter.begin} and {@link ScriptCallWriter.finish};
 * {@link evalPrepared} sends the result, loading the script with EVAL when
 * the server does not have it.
 */

const DOLLAR = 0x24;
const CR = 0x0d;
const LF = 0x0a;
const ZERO = 0x30;
const NO_ARGS: never[] = [];

/** Decimal digits of a non-negative integer. */
function digitCount(n: number): number {
  if (n < 10) return 1;
  if (n < 100) return 2;
  if (n < 1000) return 3;
  if (n < 10_000) return 4;
  let count = 5;
  for (let rest = Math.floor(n / 100_000); rest > 0; rest = Math.floor(rest / 10)) count++;
  return count;
}

/**
 * Opens a bulk string at `at` for a value of `chars` UTF-16 units: its `$`,
 * room for as many digits as `chars` has, and the CRLF after them.
 * @returns where the value's bytes go
 */
export function openBulk(data: Buffer, at: number, chars: number): number {
  data[at] = DOLLAR;
  return at + digitCount(chars) + 3;
}

/**
 * Closes the bulk string opened at `at` (by {@link openBulk}, with the same
 * `chars`) whose `size` bytes were written at `start`: writes its length and
 * both CRLFs. UTF-8 takes at least one byte per UTF-16 unit, so the length
 * has at least the digits made room for; a value with more (not ASCII,
 * across a power of ten) is moved up by the difference first.
 * @returns the offset after it
 */
export function closeBulk(
  data: Buffer,
  at: number,
  chars: number,
  start: number,
  size: number,
): number {
  const room = digitCount(chars);
  const width = digitCount(size);
  if (width !== room) {
    data.copyWithin(start + width - room, start, start + size);
    start += width - room;
  }
  let rest = size;
  for (let i = at + width; i > at; i--) {
    data[i] = ZERO + (rest % 10);
    rest = Math.floor(rest / 10);
  }
  data[at + width + 1] = CR;
  data[at + width + 2] = LF;
  data[start + size] = CR;
  data[start + size + 1] = LF;
  return start + size + 2;
}

/** Bytes a bulk string of `chars` UTF-16 units takes at most (UTF-8: 3 bytes a unit), framing included. */
export function bulkBound(chars: number): number {
  return chars * 3 + digitCount(chars * 3) + 5;
}

/** `value` as a bulk string at `at` (UTF-8). @returns the offset after it */
export function writeBulk(data: Buffer, at: number, value: string): number {
  const start = openBulk(data, at, value.length);
  return closeBulk(data, at, value.length, start, data.write(value, start));
}

/** An ioredis command whose bytes are given: sent as they are. */
class PreparedCommand extends Command {
  constructor(
    name: string,
    /** What ioredis reads of the arguments: the keys (a cluster's slot), and what debug output shows. */
    args: string[],
    private readonly bytes: Buffer,
  ) {
    super(name, NO_ARGS, { replyEncoding: 'utf8' });
    this.args = args;
  }

  override toWritable(): Buffer {
    return this.bytes;
  }
}

/** A script call written by {@link ScriptCallWriter}. */
export interface PreparedScriptCall {
  /** `EVALSHA <sha> <numkeys> <keys...> <args...>` as RESP. */
  readonly bytes: Buffer;
  /** Where the arguments after the SHA start in {@link bytes}. */
  readonly afterSha: number;
  /** Arguments in all, the command's name included. */
  readonly count: number;
  /** The keys as sent (the client's key prefix applied). */
  readonly keys: readonly string[];
}

/**
 * Writes `EVALSHA <sha> <numkeys> <keys...>` ({@link begin}), after which
 * the caller writes the arguments after the keys with
 * {@link openBulk}/{@link closeBulk}/{@link writeBulk} into the same Buffer,
 * and {@link finish}es at their end. The client's `keyPrefix` is applied to
 * the keys, as ioredis applies it to a script's keys.
 */
export class ScriptCallWriter {
  private afterSha = 0;
  private count = 0;
  private keys: readonly string[] = [];

  /** Bytes {@link begin} writes at most for these keys (the SHA, the count and the keys with their framing). */
  static headBound(client: Redis, keys: readonly string[]): number {
    const prefix = client.options.keyPrefix ?? '';
    let bytes = 96;
    for (const key of keys) bytes += bulkBound(prefix.length + key.length);
    return bytes;
  }

  constructor(
    /** Where the command is written; big enough for it (see {@link headBound} and {@link bulkBound}). */
    private readonly data: Buffer,
  ) {}

  /**
   * Writes the head of a call of `args` arguments after the keys.
   * @returns where the first of them goes
   */
  begin(client: Redis, lua: LuaScript, keys: readonly string[], args: number): number {
    const prefix = client.options.keyPrefix ?? '';
    this.keys = prefix === '' ? keys.slice() : keys.map(key => prefix + key);
    this.count = 3 + keys.length + args;
    const head = `*${this.count}\r\n$7\r\nEVALSHA\r\n$40\r\n${lua.sha}\r\n`;
    let at = this.data.write(head, 0, 'latin1');
    this.afterSha = at;
    at = writeBulk(this.data, at, String(keys.length));
    for (const key of this.keys) at = writeBulk(this.data, at, key);
    return at;
  }

  /** The call as written, its last argument ending at `end`. */
  finish(end: number): PreparedScriptCall {
    return {
      bytes: this.data.subarray(0, end),
      afterSha: this.afterSha,
      count: this.count,
      keys: this.keys,
    };
  }
}

/**
 * Sends a prepared script call (EVALSHA); when the server does not have the
 * script (first use, a restart, SCRIPT FLUSH), the same call as EVAL with
 * its source, which loads it.
 */
export async function evalPrepared(
  client: Redis,
  lua: LuaScript,
  call: PreparedScriptCall,
): Promise<unknown> {
  const keyArgs = [String(call.keys.length), ...call.keys];
  return loadingOnNoScript(
    // ioredis types sendCommand's result as unknown; it is the command's promise.
    () =>
      client.sendCommand(
        new PreparedCommand('evalsha', [lua.sha, ...keyArgs], call.bytes),
      ) as Promise<unknown>,
    () => {
      const head = Buffer.from(
        `*${call.count}\r\n$4\r\nEVAL\r\n$${Buffer.byteLength(lua.source)}\r\n${lua.source}\r\n`,
      );
      const bytes = Buffer.concat([head, call.bytes.subarray(call.afterSha)]);
      return client.sendCommand(
        new PreparedCommand('eval', [lua.source, ...keyArgs], bytes),
      ) as Promise<unknown>;
    },
  );
}

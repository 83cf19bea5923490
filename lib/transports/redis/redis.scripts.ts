import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { describeError } from '../../common/describe-error.js';

/**
 * The Lua scripts of the redis transport, as TypeScript strings rather than
 * `.lua` files so the package ships them without a copy step, each with its
 * SHA1 for EVALSHA.
 */
export interface LuaScript {
  readonly source: string;
  readonly sha: string;
}

function script(source: string): LuaScript {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/**
 * Trimmed-unread detection (Redis 7: `entries-read`), shared by the read
 * script and the stand-alone check. When the stream's first entry lies past
 * the group's last-delivered-id, entries the group never read were trimmed:
 * `entries-added - length` entries ever left the front, `entries-read` of
 * them the group had read, the rest are lost. The group's `entries-read` is
 * then set to what has left the front, so the same gap is never counted
 * twice, by this consumer or another (the script runs atomically). Without
 * a valid `entries-read` (Redis 6.2; a group created at an explicit id other
 * than 0 that has not read yet) the range is reported with `?` as count.
 * Returns '' or `#<lost|?> <last-delivered-id> <first-id>\n`.
 */
const GAP_FUNCTION = `
local function idless(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  if #ams ~= #bms then return #ams < #bms end
  if ams ~= bms then return ams < bms end
  if #aseq ~= #bseq then return #aseq < #bseq end
  return aseq < bseq
end
local function record(flat)
  local r = {}
  for i = 1, #flat, 2 do r[flat[i]] = flat[i + 1] end
  return r
end
local function gap(key, group)
  if redis.call('EXISTS', key) == 0 then return '' end
  local last, read, hasread
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    local info = record(g)
    if info['name'] == group then
      last = info['last-delivered-id']
      read = info['entries-read']
      hasread = info['lag'] ~= nil
    end
  end
  if not last then return '' end
  local first = redis.call('XRANGE', key, '-', '+', 'COUNT', 1)
  if #first == 0 or not idless(last, first[1][1]) then return '' end
  local s = record(redis.call('XINFO', 'STREAM', key))
  if not hasread then return '#? ' .. last .. ' ' .. first[1][1] .. '\\n' end
  local gone = s['entries-added'] - s['length']
  -- A group created at an explicit id (0 included) has no valid counter until it reads; at 0-0 it read nothing.
  if not read and last == '0-0' then read = 0 end
  if not read then
    redis.call('XGROUP', 'SETID', key, group, last, 'ENTRIESREAD', gone)
    return '#? ' .. last .. ' ' .. first[1][1] .. '\\n'
  end
  local lost = gone - read
  if lost <= 0 then return '' end
  redis.call('XGROUP', 'SETID', key, group, last, 'ENTRIESREAD', gone)
  return '#' .. lost .. ' ' .. last .. ' ' .. first[1][1] .. '\\n'
end
`;

/**
 * The gap check, then XREADGROUP ... > (no BLOCK), the entries framed in one
 * string: `=<entry count> <last id>\n` (so the reader knows the batch's size
 * and newest id without parsing it: it parses each entry only when it
 * dispatches it, see FramedBatch), the gap line if any, then per entry
 * `<id>\n<field count>\n`, then per field `<byte length>\n<bytes>`. KEYS[1]: the stream; ARGV: group, consumer, count.
 * The pieces go into the table as they are and are joined once: joining
 * `#v .. '\n' .. v` per field made a new Lua string (a copy and an intern)
 * of every value, and Lua writes a number as text with `sprintf("%.14g")`:
 * the few lengths and counts of a batch are written once each (on a private
 * Redis under callgrind: 61,000 -> 46,000 instructions per herald entry,
 * 40,000 -> 32,000 per one-field entry; the reply is byte for byte the same).
 * The string is returned in chunks of about 4 KB (an array of strings, the
 * reply being their concatenation): `table.concat` of a whole batch
 * overflows Lua 5.1's 8 KB buffer and then merges its pieces pairwise, each
 * byte copied again at every level, while a chunk fits the buffer (one-field
 * entries: 38,000 -> 30,000 instructions per entry). Each chunk's pieces
 * fill the same first places of one table (a table the size of a chunk,
 * not of the batch, never grown again), and the entries are walked with a
 * numeric `for` rather than `ipairs` (a call per entry): together about
 * 560 instructions fewer per entry read (callgrind, a private Redis, 1000
 * entries of 208 bytes a read).
 */
export const READ_BATCH = script(`${GAP_FUNCTION}
local head = gap(KEYS[1], ARGV[1])
local r = redis.pcall('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', KEYS[1], '>')
if type(r) == 'table' and r.err then return r end
if not r then return head end
local list = r[1][2]
if #list == 0 then return head end
head = '=' .. #list .. ' ' .. list[#list][1] .. '\\n' .. head
local out = {head}
local n = 1
local bytes = #head
local chunks = {}
local counts = {}
local lengths = {}
for x = 1, #list do
  local e = list[x]
  local f = e[2]
  local k = #f
  local c = counts[k]
  if not c then c = '\\n' .. k .. '\\n'; counts[k] = c end
  out[n + 1] = e[1]
  out[n + 2] = c
  n = n + 2
  for i = 1, k do
    local v = f[i]
    local l = #v
    local s = lengths[l]
    if not s then s = l .. '\\n'; lengths[l] = s end
    out[n + 1] = s
    out[n + 2] = v
    n = n + 2
    bytes = bytes + l
  end
  if bytes >= 4096 then
    chunks[#chunks + 1] = table.concat(out, '', 1, n)
    n = 0
    bytes = 0
  end
end
if n > 0 then chunks[#chunks + 1] = table.concat(out, '', 1, n) end
return chunks`);

/** The gap check alone, before a plain (blocking) XREADGROUP. KEYS[1]: stream; ARGV[1]: group. */
export const GAP_CHECK = script(`${GAP_FUNCTION}
return gap(KEYS[1], ARGV[1])`);

/** Deletes a consumer only if it holds nothing pending: XGROUP DELCONSUMER would discard its entries. */
export const DELETE_IDLE_CONSUMER = script(`
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #pending == 0 then return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2]) end
return -1`);

/**
 * How long a writer's order guard outlives its last call: far longer than
 * a call can wait behind the one before it (the publisher gives up on a
 * call unanswered for `writeTimeoutMs` and reconnects).
 */
export const ORDER_GUARD_TTL_MS = 60_000;

/** A call the {@link XADD_BATCH} order guard refused: nothing of it was written. */
export function isOrderRefusal(error: unknown): boolean {
  return describeError(error).startsWith('HERALDORDER');
}

/**
 * XADD per event, in order, on the server. KEYS: the streams, then (with
 * a token) the writer's order guard. ARGV[1]: maxLen (0 = no trimming).
 * ARGV[2]: how many arguments describe the runs (R). ARGV[3]: this call's
 * token, or '' (no guard: no call of this writer is in flight before it).
 * ARGV[4]: the token of the call sent right before this one and still in
 * flight when this one was sent, or ''. Then, from ARGV[5], the runs,
 * events that share a stream, field names and
 * affix: the stream's KEYS index, the field count k, the event count, the k
 * names (names are sent once per run, not per event), then the number of
 * the field written with an affix (1 to k; 0: none) and, when not 0, the
 * prefix and the suffix written around that field's value in each event of
 * the run (a part of a value repeated from event to event crosses the wire
 * once per run). Then, from ARGV[5 + R], every field value of the batch,
 * one argument each, in order. Returns, one per line, each event's entry
 * id or `!` and the error.
 *
 * The order guard: a writer with two calls in flight must never have the
 * second written when the first was not (Redis refused it: BUSY, OOM,
 * LOADING, NOSCRIPT, and the cause gone a moment later), or the first's
 * events, retried, would land after the second's. So a call that names
 * its predecessor runs only if the guard holds that predecessor's token,
 * which a call leaves there only when every one of its XADDs was written
 * (an event that failed may be retried). A call refused so fails whole
 * with `HERALDORDER`, nothing written, and is retried after its
 * predecessor. The guard expires ({@link ORDER_GUARD_TTL_MS}): nothing is
 * left behind by a writer that went away.
 *
 * Each value its own argument, not cut out of one argument that holds them
 * all: every Lua string Redis makes is hashed byte by byte (Redis's Lua
 * hashes the whole string), so a value cut out with `string.sub` was hashed
 * twice, once in the whole and once alone, and cut out besides. The
 * publisher writes the command's bytes itself (see
 * redis.prepared-command.ts): one argument per value costs it a few bytes
 * of framing, not ioredis's work per argument (issue 24, a private Redis,
 * 1000 entries a call, `INFO commandstats`: 2.7 -> 2.0 µs per 208-byte
 * entry, 2.3 -> 1.9 per 125-byte one).
 */
export const XADD_BATCH = script(`
local maxlen = ARGV[1]
local trim = tonumber(maxlen) > 0
local token = ARGV[3]
local guard
if token ~= '' then
  guard = KEYS[#KEYS]
  local after = ARGV[4]
  if after ~= '' and redis.call('GET', guard) ~= after then
    return redis.error_reply('HERALDORDER the write sent before this one was not written')
  end
end
local failed = false
local out = {}
local o = 0
local i = 5
local n = 4 + tonumber(ARGV[2])
local v = n + 1
local args = {}
local a = 0
if trim then
  args[1] = 'MAXLEN'; args[2] = '~'; args[3] = maxlen; a = 3
end
args[a + 1] = '*'
while i <= n do
  local key = KEYS[tonumber(ARGV[i])]
  local k = tonumber(ARGV[i + 1])
  local events = tonumber(ARGV[i + 2])
  for j = 1, k do args[a + 2 * j] = ARGV[i + 2 + j] end
  local p = i + 3 + k
  local fixed = tonumber(ARGV[p])
  local prefix, suffix
  if fixed > 0 then
    prefix = ARGV[p + 1]; suffix = ARGV[p + 2]; p = p + 3
  else
    p = p + 1
  end
  for e = 1, events do
    for j = 1, k do
      local value = ARGV[v]
      v = v + 1
      if j == fixed then value = prefix .. value .. suffix end
      args[a + 2 * j + 1] = value
    end
    local id = redis.pcall('XADD', key, unpack(args, 1, a + 1 + 2 * k))
    o = o + 1
    if type(id) == 'table' and id.err then
      out[o] = '!' .. string.gsub(id.err, '\\n', ' ')
      failed = true
    else
      out[o] = id
    end
  end
  i = p
end
if guard and not failed then redis.call('SET', guard, token, 'PX', ${ORDER_GUARD_TTL_MS}) end
return table.concat(out, '\\n')`);

/**
 * Runs a script by SHA, loading it with EVAL on first use on a server (or
 * after a restart or SCRIPT FLUSH). `args` is `[numkeys, ...keys, ...argv]`.
 */
export function evalScript(
  client: Redis,
  lua: LuaScript,
  args: readonly (string | number | Buffer)[],
): Promise<unknown> {
  return run(client, 'call', lua, args);
}

/**
 * As {@link evalScript}, the reply as one Buffer (bytes kept as they are):
 * a string reply as it is, an array of strings (a reply in chunks) joined.
 */
export async function evalScriptBuffer(
  client: Redis,
  lua: LuaScript,
  args: readonly (string | number | Buffer)[],
): Promise<Buffer> {
  const reply = (await run(client, 'callBuffer', lua, args)) as Buffer | Buffer[];
  if (!Array.isArray(reply)) return reply;
  return reply.length === 1 ? reply[0] : Buffer.concat(reply);
}

function run(
  client: Redis,
  method: 'call' | 'callBuffer',
  lua: LuaScript,
  args: readonly (string | number | Buffer)[],
): Promise<unknown> {
  return loadingOnNoScript(
    () => client[method]('EVALSHA', [lua.sha, ...args]),
    () => client[method]('EVAL', [lua.source, ...args]),
  );
}

/** The server does not have the script (first use, a restart, SCRIPT FLUSH). */
export function isNoScript(error: unknown): boolean {
  return describeError(error).startsWith('NOSCRIPT');
}

/**
 * Runs a script call by SHA; when the server does not have the script, the
 * same call with its source (EVAL), which loads it. Every script call of
 * the transport goes through here.
 */
export async function loadingOnNoScript<T>(
  bySha: () => Promise<T>,
  bySource: () => Promise<T>,
): Promise<T> {
  try {
    return await bySha();
  } catch (error) {
    if (!isNoScript(error)) throw error;
    return bySource();
  }
}

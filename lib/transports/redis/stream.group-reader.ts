import { logLine } from '../../common/log-line.js';
import { clusterReplyOf, RedisClusterError } from './redis.errors.js';
import { isReplyError, isTransientReplyError } from './redis.connection.js';
import { evalScript, evalScriptBuffer, GAP_CHECK, READ_BATCH } from './redis.scripts.js';
import { fieldsToRecord } from './stream-event.js';
import {
  BufferBatch,
  EMPTY_BATCH,
  FramedBatch,
  parseGap,
  type BufferEntry,
  type EntryBatch,
  type TrimmedGap,
} from './stream.entry.js';
import { describe } from './stream.subscriber.base.js';
import { SubscriberUpkeep } from './stream.group-upkeep.js';

type ReadReply = [stream: Buffer, entries: BufferEntry[]][] | null;

/** A read sent ahead of its turn, the entries it asked for, and the read failures handled before it was sent. */
interface ReadAhead {
  readonly read: Promise<EntryBatch>;
  readonly count: number;
  readonly sentAt: number;
}

/**
 * Reads in flight at most while a consumer is behind (each read returned
 * full). Two, so Redis has the next read queued while it runs one, and
 * answers it right after instead of waiting for the consumer to ask: with one,
 * a consumer that fell behind a fast publisher stayed behind (bench:redis,
 * herald: lag of 6,000-11,000 entries, 7.5 ms waiting per read against
 * 2.3 ms of dispatch), and two gave 6-7% more events/s, run both ways round.
 */
const READ_AHEAD = 2;

/** The first id is later than the second (stream ids: `<ms>-<seq>`, no leading zeros). */
export function idAfter(a: string, b: string): boolean {
  const [ams, aseq = '0'] = a.split('-');
  const [bms, bseq = '0'] = b.split('-');
  if (ams.length !== bms.length) return ams.length > bms.length;
  if (ams !== bms) return ams > bms;
  if (aseq.length !== bseq.length) return aseq.length > bseq.length;
  return aseq > bseq;
}

/**
 * Group mode reading: the group created (and re-created at the last id seen
 * after NOGROUP), XREADGROUP through the read script (with the
 * trimmed-unread check) or plainly once drained, read-ahead bounded by
 * `maxInFlight`, cluster replies named.
 */
export abstract class GroupReader extends SubscriberUpkeep {
  /** Creates the group at `at` unless it exists. @returns true when this call created it. */
  protected async ensureGroup(at: string): Promise<boolean> {
    const group = this.group!;
    try {
      await this.commands.client.xgroup('CREATE', this.stream, group.name, at, 'MKSTREAM');
      return true;
    } catch (error) {
      const cluster = clusterReplyOf(error);
      if (cluster) throw new RedisClusterError(cluster, describe(error));
      if (!describe(error).startsWith('BUSYGROUP')) throw error;
      return false;
    }
  }

  /** The group's last-delivered-id: where this subscriber's view of the stream begins. */
  protected async groupPosition(): Promise<string | undefined> {
    const groups = (await this.commands.client.xinfo('GROUPS', this.stream)) as unknown[][];
    for (const row of groups) {
      const info = fieldsToRecord(row.map(String));
      if (info.name === this.group!.name) return info['last-delivered-id'];
    }
    return undefined;
  }

  /**
   * NOGROUP: the group (or the whole stream) is gone: a Redis without
   * persistence restarted, or someone deleted it. The group is re-created at
   * the last id this subscriber saw, so whatever was written since (stream
   * ids grow with time, a restarted Redis's included) is still delivered.
   * Entries the old group had delivered and not acknowledged are gone with it.
   */
  protected async groupReset(): Promise<void> {
    const group = this.group!;
    const at = this.lastSeenId ?? group.startId;
    this.counters.groupsRecreated++;
    this.counters.resets++;
    this.drained = false;
    const created = await this.ensureGroup(at);
    this.logger.warn(
      logLine(
        'redis',
        'group-reset',
        `group ${group.name} is missing (Redis restarted without persistence, or the stream or group was deleted): ${
          created ? 're-created it' : 'another consumer re-created it'
        } at ${at}, the last id this subscriber saw (${
          this.lastSeenId === undefined
            ? 'none yet: the group start id'
            : 'entries after it are delivered'
        }); ${this.held.size} entr${this.held.size === 1 ? 'y' : 'ies'} in flight here cannot be acknowledged any more`,
        { stream: this.stream, group: group.name, lastId: at },
      ),
    );
  }

  /** Counts and logs entries trimmed before the group read them (found by the gap check). */
  protected trimmed(gap: TrimmedGap): void {
    const range = `after ${gap.after} and before ${gap.before}`;
    if (gap.lost === undefined) {
      this.counters.trimmedGaps++;
      this.logger.warn(
        logLine(
          'redis',
          'trimmed-unread-uncounted',
          `entries ${range} were trimmed before the group read them (lost; this Redis cannot count them: Redis 7 can)`,
          { stream: this.stream, group: this.group!.name, after: gap.after, before: gap.before },
        ),
      );
      return;
    }
    this.counters.trimmedUnread += gap.lost;
    this.counters.lost += gap.lost;
    this.logger.warn(
      logLine(
        'redis',
        'trimmed-unread',
        `${gap.lost} entr${gap.lost === 1 ? 'y' : 'ies'} ${range} trimmed before the group read them (lost; raise maxLen or read faster)`,
        { stream: this.stream, group: this.group!.name, after: gap.after, before: gap.before },
      ),
    );
  }

  /** Records the newest id read, for {@link groupReset}. */
  protected saw(last: string | undefined): void {
    if (last !== undefined && (this.lastSeenId === undefined || idAfter(last, this.lastSeenId)))
      this.lastSeenId = last;
  }

  protected async readGroup(): Promise<void> {
    let backoff = 0;
    /** Reads sent ahead, oldest first, and the entries they asked for in all. */
    const ahead: ReadAhead[] = [];
    let asked = 0;
    /** Read failures handled so far: a read sent ahead before the last of them fails of the same cause. */
    let failures = 0;
    while (this.running) {
      let entries: EntryBatch;
      let count = this.count;
      let sentAt = failures;
      try {
        const next = ahead.shift();
        if (next) {
          asked -= next.count;
          count = next.count;
          sentAt = next.sentAt;
          entries = await next.read;
        } else {
          if (this.held.size >= this.maxInFlight) {
            await new Promise<void>(resolve => (this.capacityWaiter = resolve));
            continue;
          }
          count = Math.min(this.count, this.maxInFlight - this.held.size);
          entries = await this.readOnce(count);
        }
        backoff = 0;
      } catch (error) {
        if (!this.running) break;
        // Sent along with a read whose failure was handled (the connection cut, the group
        // gone): one fault, one reset or back-off, one log line.
        if (sentAt < failures) continue;
        failures++;
        const message = describe(error);
        if (message.startsWith('NOGROUP')) {
          try {
            await this.groupReset();
            continue;
          } catch (createError) {
            backoff = await this.readFailed(createError, backoff);
            continue;
          }
        }
        const cluster = clusterReplyOf(error);
        if (cluster) {
          // Never taken for "scripts refused": the same command would be redirected too.
          backoff = await this.readFailed(new RedisClusterError(cluster, message), backoff);
          continue;
        }
        if (this.readMode === 'script' && isReplyError(error) && !isTransientReplyError(error)) {
          // Scripts refused for good (ACLs, a proxy without EVAL): plain XREADGROUP from now on.
          this.readMode = 'command';
          this.logger.warn(
            logLine(
              'redis',
              'read-script-refused',
              `cannot run the read script (${message}), using XREADGROUP`,
              { stream: this.stream },
            ),
          );
          continue;
        }
        backoff = await this.readFailed(error, backoff);
        continue;
      }
      const size = entries.size;
      if (size === 0) continue;
      this.counters.read += size;
      this.saw(entries.lastId);
      // A full batch means more is waiting: ask for it now, so Redis works while these handlers
      // run, up to READ_AHEAD reads in flight (one is queued in Redis while it runs the other)
      // and never more entries than maxInFlight leaves room for.
      let room = this.maxInFlight - this.held.size - size - asked;
      while (
        this.readMode === 'script' &&
        size >= count &&
        room > 0 &&
        ahead.length < READ_AHEAD &&
        this.running
      ) {
        const wanted = Math.min(this.count, room);
        const read = this.readOnce(wanted);
        read.catch(() => undefined); // awaited in its turn; a close() meanwhile must not leave it unhandled
        ahead.push({ read, count: wanted, sentAt: failures });
        asked += wanted;
        room -= wanted;
      }
      try {
        // Each entry made as it is dispatched (see EntryBatch).
        for (let entry = entries.next(); entry !== undefined; entry = entries.next())
          this.dispatch(entry, 1);
      } catch (error) {
        // A malformed reply: the entries not dispatched stay pending, claimed again after minIdleMs.
        backoff = await this.readFailed(error, backoff);
      }
    }
  }

  /**
   * One read: the script while entries keep coming, a blocking XREADGROUP
   * once drained (a script cannot block). In script mode the blocking read
   * asks for one entry, a wake-up: the script reads what follows it, for a
   * fraction of the Node CPU of the client's reply parsing (about 0.9 µs per
   * entry). A subscriber that keeps up with its stream drains it often, and
   * read each batch that way before (`bench/redis-before-after.ts`
   * BENCH_SITES=1: the client's reply decoding doubled, 100 B more per event).
   */
  protected async readOnce(count: number): Promise<EntryBatch> {
    if (this.readMode === 'script' && !this.drained) {
      const entries = await this.readByScript(count);
      this.counters.scriptReads++;
      this.drained = entries.size === 0;
      return entries;
    }
    const group = this.group!;
    if (this.gapCheck) await this.checkGap();
    const reply = (await this.reader.client.xreadgroupBuffer(
      'GROUP',
      group.name,
      group.consumer,
      'COUNT',
      this.readMode === 'script' ? 1 : count,
      'BLOCK',
      this.blockMs,
      'STREAMS',
      this.stream,
      '>',
    )) as ReadReply;
    this.drained = false;
    const entries = reply?.[0]?.[1];
    return entries?.length ? new BufferBatch(entries) : EMPTY_BATCH;
  }

  /** Before a plain XREADGROUP: the trimmed-unread check on its own (the read script includes it). */
  protected async checkGap(): Promise<void> {
    try {
      const reply = await evalScript(this.reader.client, GAP_CHECK, [
        1,
        this.stream,
        this.group!.name,
      ]);
      const gap = typeof reply === 'string' && reply !== '' ? parseGap(reply.trim()) : undefined;
      if (gap) this.trimmed(gap);
    } catch (error) {
      if (!isReplyError(error) || isTransientReplyError(error) || clusterReplyOf(error))
        throw error;
      if (describe(error).startsWith('NOGROUP')) throw error;
      this.gapCheck = false;
      this.logger.warn(
        logLine(
          'redis',
          'trim-check-refused',
          `cannot run the trimmed-entries check (${describe(error)}): entries trimmed before the group read them will not be counted`,
          { stream: this.stream, group: this.group!.name },
        ),
      );
    }
  }

  /**
   * XREADGROUP without BLOCK inside a script that returns the whole batch as
   * one length-framed string: the client parses one reply instead of five
   * elements per entry (the bulk of a consumer's CPU at volume).
   */
  protected async readByScript(count: number): Promise<EntryBatch> {
    const group = this.group!;
    const reply = await evalScriptBuffer(this.reader.client, READ_BATCH, [
      1,
      this.stream,
      group.name,
      group.consumer,
      count,
    ]);
    const batch = new FramedBatch(reply);
    if (batch.gap) this.trimmed(batch.gap);
    return batch;
  }
}

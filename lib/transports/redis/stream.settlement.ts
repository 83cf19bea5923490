import { Command, type Redis } from 'ioredis';
import { logLine } from '../../common/log-line.js';
import { isUndecodable, UnknownOperationError } from './redis.errors.js';
import { entryFromBuffers, type BufferEntry, type RawEntry } from './stream.entry.js';
import type { Held } from './stream.held.js';
import { describe, SubscriberBase } from './stream.subscriber.base.js';
import { failure } from './stream.task-pool.js';

const NO_ARGS: never[] = [];

/**
 * `XACK <stream> <group> <ids...>`, the command `client.xack(stream, group,
 * ...ids)` sends, without the `Array#flat` of its arguments in ioredis's
 * `Command` constructor: flat() reads each value through V8's generic
 * property path, about 400 instructions a value (callgrind, 1000 ids a
 * flush: ~400 instructions per event acked, 1% of a herald event). A
 * client with a key prefix (which that constructor applies), auto-pipelining
 * or friendly error stacks sends it the usual way.
 */
function xack(client: Redis, stream: string, group: string, ids: string[]): Promise<unknown> {
  const options = client.options;
  if (options.keyPrefix || options.enableAutoPipelining || options.showFriendlyErrorStack)
    return client.xack(stream, group, ...ids);
  const command = new Command('xack', NO_ARGS, { replyEncoding: 'utf8' });
  // Strings only, as flat() would leave them: [stream, group, ...ids] in one copy.
  command.args = [stream, group].concat(ids);
  return client.sendCommand(command) as Promise<unknown>;
}

/**
 * Group mode, settling what handlers made of entries: acks (one XACK per
 * turn of the event loop), nacks (delivered again here after a pause, or
 * dead-lettered past `maxDeliveries`), undecodable entries (dead-lettered at
 * once), the dead-letter move itself (MULTI: XADD + XACK), and entries
 * found trimmed (lost).
 */
export abstract class SubscriberSettlement extends SubscriberBase {
  /**
   * Group mode: hands an entry this consumer now owns to the handler; settles
   * it after. `again`: its record, when it is delivered again here (a nack's
   * retry), which it keeps.
   */
  protected dispatch(entry: RawEntry, deliveries: number, again?: Held): void {
    let held: Held;
    if (again && this.held.holds(again)) {
      clearTimeout(again.retryTimer);
      again.retryTimer = undefined;
      again.entry = entry;
      held = again;
    } else {
      held = this.held.add(entry);
    }
    const bytes = entry[2];
    if (bytes) {
      // Text with U+FFFD would reach handlers as if it were what was written: dead-lettered, bytes kept.
      this.counters.nonUtf8++;
      this.undecodable(held, deliveries, `field '${bytes.badField}' is not valid UTF-8`);
      return;
    }
    const direct = this.entryHandler;
    if (direct) {
      held.out = true;
      this.entriesOut++;
      try {
        direct(entry, held, deliveries);
      } catch (error) {
        // A throw is a failure, unless the entry was settled already (a second settle is ignored).
        this.settleEntry(held, deliveries, failure(error));
      }
      return;
    }
    this.pool.enqueue({
      message: this.message(entry, deliveries),
      done: error => this.settled(held, deliveries, error),
    });
  }

  /**
   * Settles an entry the entry handler got: acked (no error), or failed (a
   * nack: delivered again here, or dead-lettered; an undecodable error
   * dead-letters at once). Only the first settle of a delivery counts.
   */
  settleEntry(held: Held, deliveries: number, error?: unknown): void {
    if (!held.out) return;
    held.out = false;
    this.entrySettled();
    this.settled(held, deliveries, error);
  }

  protected settled(held: Held, deliveries: number, error: unknown): void {
    const id = held.entry[0];
    if (error === undefined) {
      this.counters.handled++;
      this.ack(held);
      return;
    }
    if (error instanceof UnknownOperationError) {
      this.counters.unknown++;
      this.limiter.warn(
        'unknown-operation',
        logLine('redis', 'stream-unknown-operation', `entry skipped: ${error.message}`, {
          stream: this.stream,
          id,
          event: error.operation,
        }),
      );
      this.ack(held);
      return;
    }
    if (isUndecodable(error)) {
      this.undecodable(held, deliveries, describe(error));
      return;
    }
    this.counters.failed++;
    void this.nack(held, error);
  }

  /** An entry no handler can read never will: dead-lettered now, never retried as a handler failure. */
  protected undecodable(held: Held, deliveries: number, reason: string): void {
    const id = held.entry[0];
    this.counters.undecodable++;
    void this.deadLetter(held.entry, deliveries, `undecodable: ${reason}`).then(
      () => this.release(held),
      deadError => {
        this.limiter.warn(
          'dead-letter-failed',
          logLine(
            'redis',
            'dead-letter-failed',
            `cannot dead-letter an undecodable entry (it stays pending and is claimed again): ${describe(deadError)}`,
            { stream: this.stream, id },
          ),
        );
        this.release(held);
      },
    );
  }

  protected release(held: Held): void {
    clearTimeout(held.retryTimer);
    held.retryTimer = undefined;
    this.held.remove(held);
    const waiter = this.capacityWaiter;
    if (waiter && this.held.size < this.maxInFlight) {
      this.capacityWaiter = undefined;
      waiter();
    }
  }

  protected ack(held: Held): void {
    this.release(held);
    this.acks.push(held.entry[0]);
    if (this.ackScheduled) return;
    this.ackScheduled = true;
    setImmediate(() => void this.flushAcks());
  }

  /** One XACK for every id settled since the last flush. */
  protected async flushAcks(): Promise<void> {
    this.ackScheduled = false;
    if (this.acks.length === 0) return;
    const ids = this.acks;
    this.acks = [];
    const sent = xack(this.commands.client, this.stream, this.group!.name, ids).then(
      () => void (this.counters.acked += ids.length),
      error => {
        if (describe(error).startsWith('NOGROUP')) {
          // The group is gone (reset): nothing is pending any more, these handlers did run.
          this.limiter.warn(
            'xack-nogroup',
            logLine(
              'redis',
              'stream-ack-group-gone',
              `XACK of ${ids.length} entr${ids.length === 1 ? 'y' : 'ies'} dropped: the group no longer exists (the handlers ran)`,
              { stream: this.stream, group: this.group!.name, id: ids.slice(0, 3).join(',') },
            ),
          );
          return;
        }
        // Unacknowledged entries stay pending: retried here once connected, else claimed later and redelivered.
        this.limiter.warn(
          'xack',
          logLine(
            'redis',
            'stream-ack-failed',
            `XACK of ${ids.length} entr${ids.length === 1 ? 'y' : 'ies'} failed, retrying once connected: ${describe(error)}`,
            { stream: this.stream, group: this.group!.name, id: ids.slice(0, 3).join(',') },
          ),
        );
        if (!this.running) return;
        this.acks.push(...ids);
        if (!this.ackScheduled) {
          this.ackScheduled = true;
          void this.commands.whenReady().then(() => {
            setTimeout(() => void this.flushAcks(), 50).unref();
          });
        }
      },
    );
    this.ackInFlight = sent;
    await sent;
  }

  /** A failed entry: delivered again here after a pause, or dead-lettered once over `maxDeliveries`. */
  protected async nack(held: Held, reason: unknown): Promise<void> {
    const group = this.group!;
    const entry = held.entry;
    const id = entry[0];
    this.counters.nacked++;
    try {
      const pending = (await this.commands.client.xpending(this.stream, group.name, id, id, 1)) as [
        string,
        string,
        number,
        number,
      ][];
      const mine = pending[0];
      if (!mine || mine[1] !== group.consumer) {
        // Acknowledged or claimed by someone else meanwhile: not ours any more.
        this.release(held);
        return;
      }
      const deliveries = Number(mine[3]);
      if (deliveries >= group.maxDeliveries) {
        await this.deadLetter(entry, deliveries, `handler failed: ${describe(reason)}`);
        this.release(held);
        return;
      }
      if (!this.running) {
        this.release(held);
        return;
      }
      if (!this.held.holds(held)) return;
      held.retryTimer = setTimeout(
        () => void this.redeliver(held, deliveries),
        group.nackRetryDelayMs,
      );
    } catch (error) {
      this.limiter.warn(
        'settle-failed',
        logLine(
          'redis',
          'stream-settle-failed',
          `cannot settle a failed entry (it stays pending and will be claimed again): ${describe(error)}`,
          { stream: this.stream, id },
        ),
      );
      this.release(held);
    }
  }

  protected async redeliver(held: Held, deliveries: number): Promise<void> {
    const group = this.group!;
    const id = held.entry[0];
    if (!this.running) {
      this.release(held);
      return;
    }
    try {
      // XCLAIM to ourselves counts the delivery in Redis and returns the entry as it is now.
      const claimed = (await this.commands.client.callBuffer('XCLAIM', [
        this.stream,
        group.name,
        group.consumer,
        0,
        id,
      ])) as unknown as BufferEntry[];
      const entry = claimed[0] ? entryFromBuffers(claimed[0]) : undefined;
      if (!entry || !entry[1]) {
        this.lost([id]);
        this.release(held);
        return;
      }
      this.counters.redelivered++;
      this.dispatch(entry, deliveries + 1, held);
    } catch (error) {
      this.limiter.warn(
        'redeliver-failed',
        logLine(
          'redis',
          'stream-redeliver-failed',
          `cannot redeliver an entry (it stays pending and will be claimed again): ${describe(error)}`,
          { stream: this.stream, id },
        ),
      );
      this.release(held);
    }
  }

  /** Moves an entry to the dead-letter stream and acknowledges it, atomically (MULTI). */
  protected async deadLetter(entry: RawEntry, deliveries: number, reason: string): Promise<void> {
    const group = this.group!;
    const [id, text, bytes] = entry;
    // The original bytes where the text would not be them (not UTF-8).
    const fields: readonly (string | Buffer)[] = bytes?.fields ?? text ?? [];
    const extra = [
      'dead_reason',
      reason,
      'dead_stream',
      this.stream,
      'dead_id',
      id,
      'dead_group',
      group.name,
      'dead_deliveries',
      String(deliveries),
    ];
    const trim = this.deadLetterMaxLen > 0 ? ['MAXLEN', '~', String(this.deadLetterMaxLen)] : [];
    const results = await this.commands.client
      .multi()
      .xadd(group.deadLetterStream, ...trim, '*', ...fields, ...extra)
      .xack(this.stream, group.name, id)
      .exec();
    const failure = results?.find(([error]) => error)?.[0];
    if (!results || failure) throw failure ?? new Error('MULTI aborted');
    this.counters.deadLettered++;
    this.limiter.warn(
      'dead-lettered',
      logLine(
        'redis',
        'stream-dead-lettered',
        `entry moved to the dead-letter stream after ${deliveries} deliveries: ${reason}`,
        { stream: this.stream, id, deadLetterStream: group.deadLetterStream },
      ),
    );
  }

  protected lost(ids: string[]): void {
    if (ids.length === 0) return;
    this.counters.lost += ids.length;
    this.limiter.error(
      'trimmed-pending',
      logLine(
        'redis',
        'trimmed-pending',
        `${ids.length} pending entr${ids.length === 1 ? 'y was' : 'ies were'} trimmed before being acknowledged (lost; raise maxLen)`,
        { stream: this.stream, id: ids.slice(0, 10).join(',') },
      ),
    );
  }

  /**
   * Claims entries other consumers left pending longer than `minIdleMs`
   * (XAUTOCLAIM), reads their delivery counts from XPENDING, dead-letters
   * those over `maxDeliveries` and runs the rest.
   */
}

import { logLine } from '../../common/log-line.js';
import { evalScript, DELETE_IDLE_CONSUMER } from './redis.scripts.js';
import { fieldsToRecord } from './stream-event.js';
import { entryFromBuffers, type BufferEntry, type RawEntry } from './stream.entry.js';
import { describe } from './stream.subscriber.base.js';
import { SubscriberSettlement } from './stream.settlement.js';

/**
 * Group mode upkeep, on timers: claiming entries dead consumers left pending
 * (XAUTOCLAIM), heartbeats that keep running work from being claimed
 * (XCLAIM JUSTID), and deleting idle consumers that hold nothing pending.
 */
export abstract class SubscriberUpkeep extends SubscriberSettlement {
  /**
   * Claims entries other consumers left pending longer than `minIdleMs`
   * (XAUTOCLAIM), reads their delivery counts from XPENDING, dead-letters
   * those over `maxDeliveries` and runs the rest.
   */
  protected async claimStale(): Promise<void> {
    const group = this.group;
    if (!group || !this.running || this.claiming || !this.commands.ready) return;
    const room = Math.min(this.count, this.maxInFlight - this.held.size);
    if (room <= 0) return;
    this.claiming = true;
    try {
      const reply = (await this.commands.client.callBuffer('XAUTOCLAIM', [
        this.stream,
        group.name,
        group.consumer,
        group.minIdleMs,
        this.claimCursor,
        'COUNT',
        room,
      ])) as unknown as [Buffer, (BufferEntry | null)[], Buffer[]?];
      const [next, claimed, deleted] = reply;
      this.claimCursor = String(next);
      this.lost((deleted ?? []).map(String));
      const entries: RawEntry[] = [];
      const vanished: string[] = [];
      for (const item of claimed) {
        if (!item) continue;
        const entry = entryFromBuffers(item);
        if (entry[1]) entries.push(entry);
        else vanished.push(entry[0]); // Redis 6.2 returns deleted entries with no fields
      }
      if (vanished.length) {
        this.lost(vanished);
        await this.commands.client.xack(this.stream, group.name, ...vanished);
      }
      if (entries.length === 0 || !this.running) return;
      this.counters.claimed += entries.length;
      const pending = (await this.commands.client.xpending(
        this.stream,
        group.name,
        entries[0][0],
        entries[entries.length - 1][0],
        entries.length + this.held.size,
        group.consumer,
      )) as [string, string, number, number][];
      const counts = new Map(pending.map(([id, , , deliveries]) => [id, Number(deliveries)]));
      // Held before this round (an entry released meanwhile waits for the next round).
      const held = new Set(this.held.ids());
      for (const entry of entries) {
        const id = entry[0];
        if (held.has(id)) continue; // still running here: never run twice in one process
        const deliveries = counts.get(id) ?? 1;
        if (deliveries > group.maxDeliveries) {
          await this.deadLetter(
            entry,
            deliveries,
            `delivered ${deliveries} times (maxDeliveries ${group.maxDeliveries})`,
          );
        } else {
          this.dispatch(entry, deliveries);
        }
      }
    } catch (error) {
      if (this.running)
        this.limiter.warn(
          'claim-failed',
          logLine(
            'redis',
            'stream-claim-failed',
            `claiming stale entries failed (tried again in claimIntervalMs): ${describe(error)}`,
            { stream: this.stream, group: group.name },
          ),
        );
    } finally {
      this.claiming = false;
      this.counters.claimRounds++;
    }
  }

  /** Resets the idle time of entries still being handled here, so no one claims live work. */
  protected async heartbeat(): Promise<void> {
    const group = this.group;
    if (!group || this.held.size === 0 || !this.commands.ready) return;
    const ids = this.held.ids();
    try {
      for (let i = 0; i < ids.length; i += 1000) {
        await this.commands.client.xclaim(
          this.stream,
          group.name,
          group.consumer,
          0,
          ...ids.slice(i, i + 1000),
          'JUSTID',
        );
      }
    } catch (error) {
      this.limiter.warn(
        'heartbeat-failed',
        logLine(
          'redis',
          'stream-heartbeat-failed',
          `heartbeat of ${ids.length} running entries failed (another consumer may claim them): ${describe(error)}`,
          { stream: this.stream, group: this.group?.name },
        ),
      );
    }
  }

  /** Deletes consumers idle over `consumerTimeoutMs` that hold nothing pending (checked atomically). */
  protected async deleteIdleConsumers(): Promise<void> {
    const group = this.group;
    if (!group || !this.running || !this.commands.ready) return;
    try {
      const consumers = (await this.commands.client.xinfo(
        'CONSUMERS',
        this.stream,
        group.name,
      )) as unknown[][];
      for (const row of consumers) {
        const info = fieldsToRecord(row.map(String));
        if (info.name === group.consumer) continue;
        if (Number(info.pending) === 0 && Number(info.idle) > group.consumerTimeoutMs) {
          if (await this.deleteConsumer(info.name)) this.counters.consumersDeleted++;
        }
      }
    } catch (error) {
      this.limiter.warn(
        'idle-consumers-failed',
        logLine(
          'redis',
          'idle-consumers-failed',
          `checking idle consumers failed: ${describe(error)}`,
          { stream: this.stream, group: this.group?.name },
        ),
      );
    }
  }

  /**
   * Group mode: reads the group's `lag` (entries of the stream the group has
   * not read yet; Redis 7 `XINFO GROUPS`) and its pending count, for
   * `stats()` (`lag`, `pending`) and health checks. Runs every
   * `claimIntervalMs`; a failed probe leaves the last figures.
   */
  protected async probeLag(): Promise<void> {
    const group = this.group;
    if (!group || !this.running || !this.commands.ready) return;
    try {
      const groups = (await this.commands.client.xinfo('GROUPS', this.stream)) as unknown[][];
      for (const flat of groups) {
        const info = new Map<string, unknown>();
        for (let i = 0; i + 1 < flat.length; i += 2) info.set(String(flat[i]), flat[i + 1]);
        if (info.get('name') !== group.name) continue;
        const lag = info.get('lag');
        this.gauges.lag = typeof lag === 'number' ? lag : undefined;
        const pending = info.get('pending');
        this.gauges.pending = typeof pending === 'number' ? pending : undefined;
      }
    } catch {
      // Read again at the next round; the figures stay as they were.
    }
  }

  protected async deleteConsumer(consumer: string): Promise<boolean> {
    const result = await evalScript(this.commands.client, DELETE_IDLE_CONSUMER, [
      1,
      this.stream,
      this.group!.name,
      consumer,
    ]);
    return Number(result) >= 0;
  }
}

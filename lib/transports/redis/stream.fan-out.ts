import { logLine } from '../../common/log-line.js';
import { isUndecodable, UnknownOperationError } from './redis.errors.js';
import {
  entryFromBuffers,
  type BufferEntry,
  type RawEntry,
  type StreamMessage,
} from './stream.entry.js';
import { describe } from './stream.subscriber.base.js';
import { GroupReader } from './stream.group-reader.js';

type ReadReply = [stream: Buffer, entries: BufferEntry[]][] | null;

/**
 * Fan-out mode reading (the original subscriber): XREAD from the cursor key,
 * one batch at a time through the task pool, a failing handler retried then
 * skipped, the cursor saved after each batch.
 */
export abstract class FanOutReader extends GroupReader {
  protected async readFanOut(from: string): Promise<void> {
    let cursor = from;
    let backoff = 0;
    while (this.running) {
      let reply: ReadReply;
      try {
        reply = (await this.reader.client.xreadBuffer(
          'COUNT',
          this.count,
          'BLOCK',
          this.blockMs,
          'STREAMS',
          this.stream,
          cursor,
        )) as ReadReply;
        backoff = 0;
      } catch (error) {
        if (!this.running) break;
        backoff = await this.readFailed(error, backoff);
        continue;
      }
      const entries = reply?.[0]?.[1].map(entryFromBuffers);
      if (!entries || entries.length === 0) continue;
      // `$` means "after the newest entry now": continue from what was read.
      this.counters.read += entries.length;
      this.inBatch = true;
      this.batchStarted?.();
      // While stopping, close() waits for these handlers at most its timeout; the cursor is saved if they finish.
      await this.runFanOutBatch(entries);
      this.inBatch = false;
      cursor = entries[entries.length - 1][0];
      try {
        await this.commands.client.set(this.cursorKey, cursor);
      } catch (error) {
        this.logger.warn(
          logLine(
            'redis',
            'cursor-save-failed',
            `cannot save the cursor (the batch is read again at the next start): ${describe(error)}`,
            { stream: this.stream, key: this.cursorKey, id: cursor },
          ),
        );
      }
    }
  }

  protected runFanOutBatch(entries: RawEntry[]): Promise<void> {
    return Promise.all(entries.map(entry => this.runWithRetries(entry))).then(() => undefined);
  }

  /** Runs one entry through the task queue; resolves to its failure, if any. */
  protected attempt(message: StreamMessage): Promise<unknown> {
    return new Promise(resolve => this.pool.enqueue({ message, done: resolve }));
  }

  protected async runWithRetries(entry: RawEntry): Promise<void> {
    const bytes = entry[2];
    if (bytes) {
      this.counters.undecodable++;
      this.counters.nonUtf8++;
      this.counters.skipped++;
      this.limiter.warn(
        'non-utf8',
        logLine(
          'redis',
          'fan-out-non-utf8',
          `entry ${entry[0]} skipped (undecodable): field '${bytes.badField}' is not valid UTF-8`,
          { stream: this.stream, id: entry[0] },
        ),
      );
      return;
    }
    for (let attempt = 1; ; attempt++) {
      const error = await this.attempt(this.message(entry, attempt));
      if (error === undefined) {
        this.counters.handled++;
        return;
      }
      if (error instanceof UnknownOperationError) {
        this.counters.unknown++;
        this.limiter.warn(
          'unknown-operation',
          logLine('redis', 'fan-out-unknown-operation', `entry skipped: ${error.message}`, {
            stream: this.stream,
            id: entry[0],
            event: error.operation,
          }),
        );
        return;
      }
      if (isUndecodable(error)) {
        this.counters.skipped++;
        this.counters.undecodable++;
        this.limiter.warn(
          'undecodable',
          logLine(
            'redis',
            'fan-out-undecodable',
            `entry ${entry[0]} skipped (undecodable): ${describe(error)}`,
            { stream: this.stream, id: entry[0] },
          ),
        );
        return;
      }
      this.counters.failed++;
      if (attempt >= this.handlerAttempts || !this.running) {
        this.counters.skipped++;
        this.limiter.error(
          'gave-up',
          logLine(
            'redis',
            'fan-out-gave-up',
            `handler failed ${attempt} time(s), entry skipped: ${describe(error)}`,
            { stream: this.stream, id: entry[0] },
          ),
        );
        return;
      }
      this.counters.retried++;
      this.limiter.warn(
        'retrying',
        logLine(
          'redis',
          'fan-out-retrying',
          `handler failed, retrying in ${this.handlerRetryDelayMs} ms: ${describe(error)}`,
          { stream: this.stream, id: entry[0] },
        ),
      );
      await new Promise(resolve => setTimeout(resolve, this.handlerRetryDelayMs));
    }
  }
}

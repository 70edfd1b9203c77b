import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import Redis from 'ioredis';

import { readLedgerBacklogs } from './ledger-backlog';
import { BACKLOG_READING_TTL_MS, QUEUE_MODULE_OPTIONS } from './queue.constants';
import { LedgerBehindError } from './queue.errors';
import { QueueModuleOptions } from './queue-module-options.interface';
import { createRedisClient, withTimeout } from './redis-connection';

interface Reading {
  unread: number | undefined;
  at: number;
}

/**
 * Refuses new jobs of a queue while the ledger has `producerLedgerBacklogLimit` or more entries
 * of its event stream unread. Workers already stop at a lower limit; this bounds what producers
 * add on top, so that BullMQ's trimming cannot remove events the ledger has not recorded. The
 * backlog is read at most every 250 ms per process and shared by every enqueue in between, so
 * a burst may overshoot the limit by what one process accepts in that time. An unknown backlog
 * (no ledger has published its progress, or Redis does not answer) refuses nothing: Redis being
 * down has its own policy.
 */
@Injectable()
export class LedgerBacklogGate implements OnApplicationShutdown {
  private readonly logger = new Logger(LedgerBacklogGate.name);
  private readonly readings = new Map<string, Reading>();
  private refreshing: Promise<void> | undefined;
  private redis: Redis | undefined;
  private failing = false;

  constructor(@Inject(QUEUE_MODULE_OPTIONS) private readonly options: QueueModuleOptions) {}

  onApplicationShutdown(): void {
    this.redis?.disconnect();
  }

  /**
   * Called on every enqueue, so it allocates nothing unless a read is due.
   * @throws LedgerBehindError for the first of the queues that is too far behind
   */
  async assertRoomFor(queues: readonly string[]): Promise<void> {
    const limit = this.options.producerLedgerBacklogLimit;
    if (limit === 0) {
      return;
    }

    // The first look at a queue is awaited; later ones refresh in the background, so that an
    // enqueue never waits for Redis here once its queue has a reading.
    if (queues.some((queue) => !this.readings.has(queue))) {
      await this.refresh([...new Set(queues)]);
    } else if (queues.some((queue) => this.isStale(queue))) {
      void this.refresh([...new Set(queues)]);
    }

    for (const queue of queues) {
      const unread = this.readings.get(queue)?.unread;
      if (unread !== undefined && unread >= limit) {
        throw new LedgerBehindError(queue, unread, limit);
      }
    }
  }

  private isStale(queue: string): boolean {
    const reading = this.readings.get(queue);

    return !reading || Date.now() - reading.at >= BACKLOG_READING_TTL_MS;
  }

  /** One read at a time; a caller that arrives meanwhile waits for it rather than start another. */
  private async refresh(queues: string[]): Promise<void> {
    while (this.refreshing) {
      await this.refreshing;
      if (!queues.some((queue) => this.isStale(queue))) {
        return;
      }
    }

    this.refreshing = this.read(queues).finally(() => (this.refreshing = undefined));
    await this.refreshing;
  }

  private async read(queues: string[]): Promise<void> {
    this.redis ??= createRedisClient(this.options.redisUrl);
    let backlogs: Map<string, number | undefined>;
    try {
      backlogs = await withTimeout(
        readLedgerBacklogs(this.redis, this.options.prefix, queues),
        this.options.dispatchTimeoutMs,
      );
      this.noteRecovery();
    } catch (error) {
      this.noteFailure(error);
      backlogs = new Map();
    }

    const at = Date.now();
    for (const queue of queues) {
      this.readings.set(queue, { unread: backlogs.get(queue), at });
    }
  }

  private noteFailure(error: unknown): void {
    if (!this.failing) {
      this.failing = true;
      this.logger.warn({
        message: 'cannot read the ledger backlog; producers are not held meanwhile',
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  private noteRecovery(): void {
    if (this.failing) {
      this.failing = false;
      this.logger.log({ message: 'reading the ledger backlog again' });
    }
  }
}

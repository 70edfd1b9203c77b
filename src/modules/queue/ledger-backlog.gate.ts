import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import Redis from 'ioredis';

import { readLedgerBacklogs } from './ledger-backlog';
import {
  BACKLOG_NEAR_LIMIT_SHARE,
  BACKLOG_READING_TTL_MS,
  ENTRIES_PER_ENQUEUED_JOB,
  QUEUE_MODULE_OPTIONS,
} from './queue.constants';
import { LedgerBehindError } from './queue.errors';
import { QueueModuleOptions } from './queue-module-options.interface';
import { createRedisClient, withTimeout } from './redis-connection';

/** What this process knows of one queue's backlog. */
interface QueueBacklog {
  /** Unread entries at the last reading; `undefined` while unknown. */
  unread: number | undefined;
  at: number;
  /** Entries of this process's admitted enqueues that may not be in Redis yet. */
  inFlight: number;
  /** Entries of finished enqueues that the last reading may not have counted. */
  landed: number;
}

/**
 * Refuses new jobs of a queue while the ledger has `producerLedgerBacklogLimit` or more entries
 * of its event stream unread. Workers already stop at a lower limit; this bounds what producers
 * add on top, so that BullMQ's trimming cannot remove events the ledger has not recorded.
 *
 * The backlog is estimated as the last reading plus the entries of this process's enqueues that
 * the reading may have missed (two per job: `added` and `waiting`). Far from the limit a reading
 * is shared for 250 ms, so that enqueues rarely wait for Redis here; from half of the limit on,
 * every enqueue waits for a fresh reading (concurrent ones share it). One process therefore
 * overshoots the limit by at most one call's jobs; several API processes by what each has in
 * flight at once, since none sees the others' jobs before they reach Redis. An unknown backlog
 * (no ledger has published its progress, or Redis does not answer) refuses nothing: Redis being
 * down has its own policy.
 */
@Injectable()
export class LedgerBacklogGate implements OnApplicationShutdown {
  private readonly logger = new Logger(LedgerBacklogGate.name);
  private readonly backlogs = new Map<string, QueueBacklog>();
  private refreshing: Promise<void> | undefined;
  private redis: Redis | undefined;
  private failing = false;

  constructor(@Inject(QUEUE_MODULE_OPTIONS) private readonly options: QueueModuleOptions) {}

  onApplicationShutdown(): void {
    this.redis?.disconnect();
  }

  /**
   * Admits one enqueue of jobs of the given queues (one entry per job), or refuses it. An
   * admitted enqueue must call `release` with the same queues once it has finished, whatever
   * the outcome. Called on every enqueue, so it allocates nothing unless a read is due.
   * @throws LedgerBehindError for the first of the queues that is too far behind
   */
  async admit(queues: readonly string[]): Promise<void> {
    const limit = this.options.producerLedgerBacklogLimit;
    if (limit === 0) {
      return;
    }

    if (queues.some((queue) => this.mustReadFirst(queue, limit))) {
      await this.refresh([...new Set(queues)]);
    } else if (queues.some((queue) => this.isStale(queue))) {
      void this.refresh([...new Set(queues)]);
    }

    // Checked, then counted, with no await between: concurrent enqueues see each other's jobs.
    for (const queue of queues) {
      const estimate = this.estimate(queue);
      if (estimate !== undefined && estimate >= limit) {
        throw new LedgerBehindError(queue, estimate, limit);
      }
    }
    for (const queue of queues) {
      this.backlogs.get(queue)!.inFlight += ENTRIES_PER_ENQUEUED_JOB;
    }
  }

  /** An admitted enqueue is over: its entries are in Redis, or will never be. */
  release(queues: readonly string[]): void {
    if (this.options.producerLedgerBacklogLimit === 0) {
      return;
    }

    for (const queue of queues) {
      const backlog = this.backlogs.get(queue);
      if (backlog) {
        backlog.inFlight -= ENTRIES_PER_ENQUEUED_JOB;
        backlog.landed += ENTRIES_PER_ENQUEUED_JOB;
      }
    }
  }

  private estimate(queue: string): number | undefined {
    const backlog = this.backlogs.get(queue);
    if (backlog?.unread === undefined) {
      return undefined;
    }

    return backlog.unread + backlog.inFlight + backlog.landed;
  }

  /** Without a reading, or near the limit, an enqueue waits for a fresh one. */
  private mustReadFirst(queue: string, limit: number): boolean {
    if (!this.backlogs.has(queue)) {
      return true;
    }

    const estimate = this.estimate(queue);

    return estimate !== undefined && estimate >= limit * BACKLOG_NEAR_LIMIT_SHARE;
  }

  private isStale(queue: string): boolean {
    const backlog = this.backlogs.get(queue);

    return !backlog || Date.now() - backlog.at >= BACKLOG_READING_TTL_MS;
  }

  /**
   * One read at a time; a caller that arrives meanwhile waits for it rather than start another,
   * and is served by it if it covered the caller's queues: what a read that began before the
   * caller's arrival may have missed is counted in `inFlight` and `landed`.
   */
  private async refresh(queues: string[]): Promise<void> {
    const arrivedAt = Date.now();
    while (this.refreshing) {
      await this.refreshing;
      if (queues.every((queue) => (this.backlogs.get(queue)?.at ?? -1) >= arrivedAt)) {
        return;
      }
    }

    this.refreshing = this.read(queues).finally(() => (this.refreshing = undefined));
    await this.refreshing;
  }

  private async read(queues: string[]): Promise<void> {
    const landedBefore = queues.map((queue) => this.backlogs.get(queue)?.landed ?? 0);
    const backlogs = await this.readUnread(queues);

    const at = Date.now();
    queues.forEach((queue, index) => {
      const backlog = this.backlogs.get(queue) ?? { unread: 0, at, inFlight: 0, landed: 0 };
      backlog.unread = backlogs.get(queue);
      backlog.at = at;
      // Entries that landed before the read began are in it; later ones may not be.
      backlog.landed -= landedBefore[index];
      this.backlogs.set(queue, backlog);
    });
  }

  private async readUnread(queues: string[]): Promise<Map<string, number | undefined>> {
    this.redis ??= createRedisClient(this.options.redisUrl);
    try {
      const backlogs = await withTimeout(
        readLedgerBacklogs(this.redis, this.options.prefix, queues),
        this.options.dispatchTimeoutMs,
      );
      this.noteRecovery();

      return backlogs;
    } catch (error) {
      this.noteFailure(error);

      return new Map();
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

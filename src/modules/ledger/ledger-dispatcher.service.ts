import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import Redis from 'ioredis';
import { DataSource, In } from 'typeorm';

import { JobEntity } from '../../entities';
import { JobDispatcher } from '../queue/job-dispatcher.service';
import { QueueRegistry } from '../queue/queue-registry.service';
import { createRedisClient } from '../queue/redis-connection';
import { fromBullJobId, toBullJobId } from '../queue/queue.constants';
import { FinishedJobsCleaner } from './finished-jobs.cleaner';
import {
  DISPATCH_PAGES_PER_RUN,
  DISPATCH_SCAN_LIMIT,
  LEDGER_MODULE_OPTIONS,
} from './ledger.constants';
import { LedgerModuleOptions } from './ledger-module-options.interface';

/**
 * Sends rows that were committed but never reached Redis (the enqueuing process died between
 * its commit and its send, or Redis refused the send), and sweeps finished jobs a stopped
 * projector left in Redis. Driven by the active projector's loop, never by a timer of its own:
 * every send of an old row then happens in one sequence with the reconciler's, so two senders
 * can never both find a job missing and both send it.
 */
@Injectable()
export class LedgerDispatcher implements OnApplicationShutdown {
  private readonly logger = new Logger(LedgerDispatcher.name);
  private readonly redis: Redis;
  private readonly cleaner: FinishedJobsCleaner;
  private nextRunAt = 0;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly registry: QueueRegistry,
    private readonly dispatcher: JobDispatcher,
    @Inject(LEDGER_MODULE_OPTIONS) private readonly options: LedgerModuleOptions,
  ) {
    this.redis = createRedisClient(registry.options.redisUrl);
    this.cleaner = new FinishedJobsCleaner(this.redis);
  }

  onApplicationShutdown(): void {
    this.redis.disconnect();
  }

  /** Runs both scans if `dispatchIntervalMs` has passed since the last run. */
  async runWhenDue(): Promise<void> {
    if (Date.now() < this.nextRunAt) {
      return;
    }

    this.nextRunAt = Date.now() + this.options.dispatchIntervalMs;
    await this.dispatchUndispatched();
    await this.sweepFinishedJobs();
  }

  /**
   * Sends every pending row older than the grace period that Redis does not hold, and records
   * `dispatched_at` for the ones it does hold (the projector no longer writes it when a job is
   * added, so jobs that wait long are confirmed here). Works through the rows page by page, up
   * to `DISPATCH_PAGES_PER_RUN` pages. Returns how many were sent.
   */
  async dispatchUndispatched(): Promise<number> {
    let sent = 0;

    for (let page = 0; page < DISPATCH_PAGES_PER_RUN; page++) {
      const result = await this.dispatchPage();
      sent += result.sent;
      if (result.scanned < DISPATCH_SCAN_LIMIT || result.confirmed + result.sent === 0) {
        break;
      }
    }

    return sent;
  }

  private async dispatchPage(): Promise<{ scanned: number; confirmed: number; sent: number }> {
    // In the index's order (status, dispatched_at, created_at, id), so the scan stops at LIMIT.
    const candidates = await this.dataSource.query<
      Array<{ id: string | number; job_type: string }>
    >(
      `SELECT id, job_type FROM job_queue
       WHERE status = 'pending' AND dispatched_at IS NULL
         AND created_at < NOW(3) - INTERVAL ? MICROSECOND
       ORDER BY created_at, id LIMIT ?`,
      [this.registry.options.dispatchGraceMs * 1000, DISPATCH_SCAN_LIMIT],
    );
    if (candidates.length === 0) {
      return { scanned: 0, confirmed: 0, sent: 0 };
    }

    const { held, missing } = await this.findInRedis(
      candidates.map((row) => ({ id: Number(row.id), jobType: row.job_type })),
    );
    await this.recordDispatched(held);
    const sent = await this.sendMissing(missing);

    return { scanned: candidates.length, confirmed: held.size, sent };
  }

  private async recordDispatched(held: Map<number, Date>): Promise<void> {
    if (held.size === 0) {
      return;
    }

    const ids = [...held.keys()];
    const cases = ids.map(() => 'WHEN ? THEN ?').join(' ');
    await this.dataSource.query(
      `UPDATE job_queue SET dispatched_at = CASE id ${cases} END
       WHERE id IN (${ids.map(() => '?').join(', ')}) AND dispatched_at IS NULL`,
      [...ids.flatMap((id) => [id, held.get(id)]), ...ids],
    );
  }

  private async sendMissing(missing: number[]): Promise<number> {
    if (missing.length === 0) {
      return 0;
    }

    // Read the rows after asking Redis: a row that is still not finished now was not removed
    // from Redis by the ledger, so its job is truly absent and sending it cannot run it twice.
    const rows = await this.dataSource
      .getRepository(JobEntity)
      .findBy({ id: In(missing), status: 'pending' });
    const sent = await this.dispatcher.dispatch(rows);
    if (sent > 0) {
      this.logger.warn({
        message: 'sent jobs that had not reached Redis',
        jobIds: rows.map((row) => row.id),
      });
    }

    return sent;
  }

  /**
   * Removes finished jobs that the ledger already recorded but that are still in Redis: the
   * projector stopped between its commit and its clean-up. Returns how many were removed.
   */
  async sweepFinishedJobs(): Promise<number> {
    let removed = 0;

    for (const queue of this.registry.jobTypes) {
      const keyPrefix = `${this.registry.options.prefix}:${queue}:`;
      const finished = [
        ...(await this.redis.zrange(`${keyPrefix}completed`, 0, DISPATCH_SCAN_LIMIT - 1)),
        ...(await this.redis.zrange(`${keyPrefix}failed`, 0, DISPATCH_SCAN_LIMIT - 1)),
      ];
      const rowIds = finished.map(fromBullJobId).filter((id): id is number => id !== undefined);
      if (rowIds.length === 0) {
        continue;
      }

      const recorded = await this.dataSource.getRepository(JobEntity).find({
        select: { id: true },
        where: { id: In(rowIds), status: In(['completed', 'failed']) },
      });
      removed += await this.cleaner.remove(
        keyPrefix,
        recorded.map((row) => toBullJobId(row.id)),
      );
    }

    return removed;
  }

  /** Which rows' jobs Redis holds (with the time each was added) and which it does not. */
  private async findInRedis(
    rows: Array<{ id: number; jobType: string }>,
  ): Promise<{ held: Map<number, Date>; missing: number[] }> {
    const pipeline = this.redis.pipeline();
    for (const row of rows) {
      // Every BullMQ job hash has a name; `timestamp` is when the job was added.
      pipeline.hmget(this.registry.jobKey(row.jobType, toBullJobId(row.id)), 'name', 'timestamp');
    }
    const results = (await pipeline.exec()) ?? [];

    const held = new Map<number, Date>();
    const missing: number[] = [];
    rows.forEach((row, index) => {
      const [name, timestamp] = (results[index]?.[1] as Array<string | null> | undefined) ?? [];
      if (name === null || name === undefined) {
        missing.push(row.id);

        return;
      }

      const millis = Number(timestamp);
      held.set(row.id, Number.isFinite(millis) && millis > 0 ? new Date(millis) : new Date());
    });

    return { held, missing };
  }
}

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

interface RawCandidateRow {
  id: string | number;
  job_type: string;
  created_at: Date;
}

interface CandidateRow {
  id: number;
  jobType: string;
  createdAt: Date;
}

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
  /** Where the scan for undispatched rows goes on; undefined: from the oldest. */
  private scanAfter: CandidateRow | undefined;

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
   * Sends every pending row older than the grace period that Redis does not hold. Rows are
   * checked in creation order from where the previous run stopped, at most
   * `DISPATCH_PAGES_PER_RUN` pages per run, starting over after the newest: the projector leaves
   * `dispatched_at` empty until a job starts, so a backlog waiting in Redis looks undispatched,
   * and a scan that always began at the oldest row would never get past it. Returns how many
   * were sent.
   */
  async dispatchUndispatched(): Promise<number> {
    let sent = 0;

    for (let page = 0; page < DISPATCH_PAGES_PER_RUN; page++) {
      const candidates = await this.nextCandidates();
      const last = candidates[candidates.length - 1];
      // Past the newest candidate, the next page starts over at the oldest.
      this.scanAfter = candidates.length < DISPATCH_SCAN_LIMIT ? undefined : last;

      sent += await this.sendMissing(await this.missingFromRedis(candidates));
      if (this.scanAfter === undefined) {
        break;
      }
    }

    return sent;
  }

  private async nextCandidates(): Promise<CandidateRow[]> {
    const after = this.scanAfter;
    const graceMicros = this.registry.options.dispatchGraceMs * 1000;
    // In the order of the index (status, dispatched_at, created_at, id): the scan stops at LIMIT.
    const rows = await this.dataSource.query<RawCandidateRow[]>(
      `SELECT id, job_type, created_at FROM job_queue
       WHERE status = 'pending' AND dispatched_at IS NULL
         AND created_at < NOW(3) - INTERVAL ? MICROSECOND
         ${after ? 'AND created_at >= ? AND (created_at > ? OR id > ?)' : ''}
       ORDER BY created_at, id LIMIT ?`,
      after
        ? [graceMicros, after.createdAt, after.createdAt, after.id, DISPATCH_SCAN_LIMIT]
        : [graceMicros, DISPATCH_SCAN_LIMIT],
    );

    return rows.map((row) => ({
      id: Number(row.id),
      jobType: row.job_type,
      createdAt: row.created_at,
    }));
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

  private async missingFromRedis(rows: CandidateRow[]): Promise<number[]> {
    if (rows.length === 0) {
      return [];
    }

    const pipeline = this.redis.pipeline();
    for (const row of rows) {
      pipeline.exists(this.registry.jobKey(row.jobType, toBullJobId(row.id)));
    }
    const results = (await pipeline.exec()) ?? [];

    return rows.filter((_, index) => results[index]?.[1] === 0).map((row) => row.id);
  }
}

import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { JobsOptions } from 'bullmq';
import Redis from 'ioredis';

import { chunks } from '../../common/chunks';
import { JobEntity } from '../../entities';
import { isPrioritized } from './job-type.interface';
import { QueueRegistry } from './queue-registry.service';
import { toBullJobId, toBullJobName, toBullPriority } from './queue.constants';
import { RESUMED_EXPONENTIAL_BACKOFF } from './resumed-backoff';
import { RedisUnavailableError } from './queue.errors';
import { createRedisClient, withTimeout } from './redis-connection';

/** After Redis failed a send, further sends are skipped for this long. */
const REDIS_RETRY_AFTER_MS = 3000;
/** A PING this recent counts as proof that Redis is up. */
const REDIS_HEALTH_TTL_MS = 1000;
/**
 * Jobs per `addBulk` call. BullMQ sends one call as one MULTI, which Redis runs only once all of
 * it has arrived; calls of 100 in flight together let Redis run one while the next is encoded.
 */
export const SEND_CHUNK_SIZE = 100;

/**
 * Sends ledger rows to their BullMQ queues. The BullMQ job id is derived from the row id, so a
 * second send of a job that is still in Redis is a no-op.
 */
@Injectable()
export class JobDispatcher implements OnApplicationShutdown {
  private readonly logger = new Logger(JobDispatcher.name);
  private redisDownUntil = 0;
  private redisHealthyAt = 0;
  private healthClient: Redis | undefined;
  /** Job types whose dropped priorities were already reported, to warn once per type. */
  private readonly warnedPriorityDropped = new Set<string>();

  constructor(private readonly registry: QueueRegistry) {}

  /**
   * Sends rows that were committed at `committedAt` (a `performance.now()` reading), unless the
   * grace period has passed: from then on only the ledger's dispatcher may send them, so that a
   * late send here can never race with a re-send there. Returns how many were sent.
   */
  async dispatchFresh(rows: JobEntity[], committedAt: number): Promise<number> {
    if (performance.now() - committedAt > this.registry.options.dispatchGraceMs / 2) {
      this.logger.warn({ message: 'left jobs to the ledger dispatcher', jobIds: ids(rows) });

      return 0;
    }

    return this.dispatch(rows);
  }

  /**
   * Throws `RedisUnavailableError` unless Redis answered a PING recently (within a second) or
   * answers one now within the dispatch timeout.
   */
  async assertRedisAvailable(): Promise<void> {
    if (Date.now() < this.redisDownUntil) {
      throw new RedisUnavailableError();
    }

    if (Date.now() - this.redisHealthyAt < REDIS_HEALTH_TTL_MS) {
      return;
    }

    this.healthClient ??= createRedisClient(this.registry.options.redisUrl);
    try {
      await withTimeout(this.healthClient.ping(), this.registry.options.dispatchTimeoutMs);
      this.redisHealthyAt = Date.now();
    } catch {
      this.redisDownUntil = Date.now() + REDIS_RETRY_AFTER_MS;
      throw new RedisUnavailableError();
    }
  }

  onApplicationShutdown(): void {
    this.healthClient?.disconnect();
  }

  /**
   * Sends rows with `addBulk`, per job type, in calls of up to `SEND_CHUNK_SIZE` jobs that are
   * in flight together (in order, on the queue's one connection). A refusal is logged, not
   * thrown: the rows are already committed and the ledger's dispatcher sends them later; the
   * job ids make a second send of the calls that did arrive a no-op.
   */
  async dispatch(rows: JobEntity[], refunded: ReadonlySet<number> = new Set()): Promise<number> {
    if (Date.now() < this.redisDownUntil) {
      // Redis failed moments ago: answer at once and leave the rows to the ledger dispatcher.
      return 0;
    }

    let sent = 0;
    for (const [jobType, group] of groupByType(rows)) {
      const calls = chunks(group, SEND_CHUNK_SIZE);
      const outcomes = await Promise.allSettled(
        calls.map((call) => this.sendChunk(jobType, call, refunded)),
      );

      const refused = calls.filter((_, index) => outcomes[index].status === 'rejected').flat();
      sent += group.length - refused.length;
      const rejection = outcomes.find((outcome) => outcome.status === 'rejected');
      if (rejection) {
        this.noteRefusal(jobType, refused, rejection.reason);
      }
    }

    return sent;
  }

  private async sendChunk(
    jobType: string,
    rows: JobEntity[],
    refunded: ReadonlySet<number>,
  ): Promise<void> {
    const adding = this.registry
      .queue(jobType)
      .addBulk(rows.map((row) => this.toBullJob(row, refunded.has(row.id))));

    // BullMQ waits for a connection without limit; a producer must not. A send that completes
    // after the timeout is harmless: the job id makes a second send a no-op.
    await withTimeout(adding, this.registry.options.dispatchTimeoutMs);
  }

  private noteRefusal(jobType: string, rows: JobEntity[], error: unknown): void {
    this.redisDownUntil = Date.now() + REDIS_RETRY_AFTER_MS;
    this.logger.warn({
      message: 'Redis refused jobs; the ledger dispatcher will send them again',
      jobType,
      jobIds: ids(rows),
      error: error instanceof Error ? error.message : String(error),
    });
  }

  /**
   * @param refund - the row's latest start was lost with Redis, not failed: it does not count
   *   against the attempts left.
   */
  private toBullJob(
    row: JobEntity,
    refund: boolean,
  ): { name: string; data: unknown; opts: JobsOptions } {
    const remainingDelay = row.runAt ? Math.max(0, row.runAt.getTime() - Date.now()) : 0;
    const used = row.attemptCount - (refund ? 1 : 0);
    const remainingAttempts = Math.max(1, row.maxAttempts - used);

    return {
      name: toBullJobName(row.jobType, row.attemptCount),
      data: JSON.parse(row.payload) as unknown,
      opts: {
        jobId: toBullJobId(row.id),
        ...this.priorityOption(row),
        attempts: remainingAttempts,
        backoff: this.backoffOption(row),
        delay: remainingDelay > 0 ? remainingDelay : undefined,
        // Finished jobs stay in Redis until the ledger has recorded them; the ledger removes
        // them. A job missing from Redis therefore always means it still has to be sent.
        removeOnComplete: false,
        removeOnFail: false,
      },
    };
  }

  /**
   * BullMQ grows an exponential delay with its own attempt count, which starts at zero on every
   * send: a job sent again after attempts were counted gets the workers' strategy that counts
   * them too (`resumedBackoff`).
   */
  private backoffOption(row: JobEntity): JobsOptions['backoff'] {
    if (!row.backoffStrategy) {
      return undefined;
    }

    const resumed = row.backoffStrategy === 'exponential' && row.attemptCount > 0;

    return {
      type: resumed ? RESUMED_EXPONENTIAL_BACKOFF : row.backoffStrategy,
      delay: row.backoffDelayMs ?? 0,
      jitter: row.backoffJitter ?? 0,
    };
  }

  /**
   * BullMQ's priority for a prioritised type; none at all for a type that runs in arrival order,
   * so that the job goes to the plain wait list. A row of such a type that has a priority anyway
   * (recorded before the type was switched) is still sent, in arrival order with the others:
   * sent with its priority, it would wait behind every job of the wait list instead.
   */
  private priorityOption(row: JobEntity): Pick<JobsOptions, 'priority'> {
    if (isPrioritized(this.registry.catalogue.get(row.jobType))) {
      return { priority: toBullPriority(row.priority) };
    }

    if (row.priority !== 0 && !this.warnedPriorityDropped.has(row.jobType)) {
      this.warnedPriorityDropped.add(row.jobType);
      this.logger.warn({
        message:
          'jobs of this type are sent without their priority: it runs in arrival order ' +
          '(logged once per type)',
        jobType: row.jobType,
        firstJobId: row.id,
        priority: row.priority,
      });
    }

    return {};
  }
}

function groupByType(rows: JobEntity[]): Map<string, JobEntity[]> {
  const groups = new Map<string, JobEntity[]>();
  for (const row of rows) {
    const group = groups.get(row.jobType) ?? [];
    group.push(row);
    groups.set(row.jobType, group);
  }

  return groups;
}

function ids(rows: JobEntity[]): number[] {
  return rows.map((row) => row.id);
}

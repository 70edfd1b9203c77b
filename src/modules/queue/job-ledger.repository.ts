import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { Between, DataSource, EntityManager, In } from 'typeorm';

import { JobEntity, JobTransitionEntity } from '../../entities';
import { ValidatedJob } from './enqueue-request';

export interface InsertOutcome {
  /** One row per requested job, in request order. */
  rows: JobEntity[];
  /** The rows this call created; only these are sent to Redis. */
  created: JobEntity[];
}

interface InsertResult {
  insertId: number | string;
  affectedRows: number;
}

/** The enqueue side of the ledger: new rows and their creation history, and reads. */
@Injectable()
export class JobLedgerRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * Writes the rows of new jobs and one `pending` history row each, in the manager's
   * transaction. A job whose idempotency key is already in the ledger (or earlier in the same
   * batch) gets the existing row instead. Returns the rows in request order, and which of them
   * were created by this call.
   */
  async insert(
    manager: EntityManager,
    jobs: ValidatedJob[],
    lockingRead = false,
  ): Promise<InsertOutcome> {
    const existing = await this.findByKeys(manager, jobs, lockingRead);
    const fresh = jobs.filter(
      (job, index) =>
        job.idempotencyKey === null ||
        (!existing.has(job.idempotencyKey) &&
          jobs.findIndex((other) => other.idempotencyKey === job.idempotencyKey) === index),
    );
    const created = fresh.length > 0 ? await this.insertRows(manager, fresh) : [];

    const createdFor = new Map(fresh.map((job, index) => [job, created[index]]));
    const byKey = new Map(existing);
    for (const [job, row] of createdFor) {
      if (job.idempotencyKey !== null) {
        byKey.set(job.idempotencyKey, row);
      }
    }
    const rows = jobs.map(
      (job) => createdFor.get(job) ?? byKey.get(job.idempotencyKey ?? '') ?? missingRow(job),
    );

    return { rows, created };
  }

  private async findByKeys(
    manager: EntityManager,
    jobs: ValidatedJob[],
    lockingRead: boolean,
  ): Promise<Map<string, JobEntity>> {
    const keys = jobs.map((job) => job.idempotencyKey).filter((key) => key !== null);
    if (keys.length === 0) {
      return new Map();
    }

    // After a duplicate-key error, only a locking read is sure to see the row a concurrent
    // enqueue committed; the first look stays a plain read, whose gap locks would deadlock.
    const rows = await manager.getRepository(JobEntity).find({
      where: { idempotencyKey: In(keys) },
      ...(lockingRead ? { lock: { mode: 'pessimistic_read' as const } } : {}),
    });

    return new Map(rows.map((row) => [row.idempotencyKey!, row]));
  }

  private async insertRows(manager: EntityManager, jobs: ValidatedJob[]): Promise<JobEntity[]> {
    // run_at is computed by the database so that it shares a clock with created_at.
    const placeholders = jobs
      .map(() => '(?, ?, ?, ?, ?, ?, ?, ?, NOW(3) + INTERVAL ? MICROSECOND)')
      .join(', ');
    const parameters = jobs.flatMap((job) => [
      job.jobType,
      job.payloadJson,
      job.priority,
      job.idempotencyKey,
      job.maxAttempts,
      job.backoff?.strategy ?? null,
      job.backoff?.delayMs ?? null,
      job.backoff?.jitter ?? null,
      job.delayMs * 1000,
    ]);

    const result = await manager.query<InsertResult>(
      `INSERT INTO job_queue
         (job_type, payload, priority, idempotency_key, max_attempts, backoff_strategy,
          backoff_delay_ms, backoff_jitter, run_at)
       VALUES ${placeholders}`,
      parameters,
    );

    // One multi-row INSERT gets consecutive ids from its first one (auto_increment_increment 1).
    const firstId = Number(result.insertId);
    const lastId = firstId + jobs.length - 1;

    const rows = await manager.getRepository(JobEntity).find({
      where: { id: Between(firstId, lastId) },
      order: { id: 'ASC' },
    });
    if (rows.length !== jobs.length) {
      throw new Error(
        `expected ${jobs.length} consecutive ids from ${firstId}; is auto_increment_increment 1?`,
      );
    }

    // Plain VALUES, not INSERT … SELECT: the latter takes a table-wide auto-increment lock and
    // shared locks on job_queue, which deadlock with a concurrent enqueue.
    await manager.query(
      `INSERT INTO job_queue_history (job_id, from_status, to_status, attempt, occurred_at, source)
       VALUES ${rows.map(() => "(?, NULL, 'pending', 0, ?, 'enqueue')").join(', ')}`,
      rows.flatMap((row) => [row.id, row.createdAt]),
    );

    return rows;
  }

  async findById(id: number): Promise<JobEntity | null> {
    return this.dataSource.getRepository(JobEntity).findOneBy({ id });
  }

  async history(jobId: number): Promise<JobTransitionEntity[]> {
    return this.dataSource.getRepository(JobTransitionEntity).find({
      where: { jobId },
      order: { id: 'ASC' },
    });
  }

  get defaultManager(): EntityManager {
    return this.dataSource.manager;
  }
}

function missingRow(job: ValidatedJob): never {
  throw new Error(`no ledger row for idempotency key ${job.idempotencyKey ?? '(none)'}`);
}

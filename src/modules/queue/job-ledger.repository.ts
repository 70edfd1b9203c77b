import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { Between, DataSource, EntityManager } from 'typeorm';

import { JobEntity, JobTransitionEntity } from '../../entities';
import { ValidatedJob } from './enqueue-request';

interface InsertResult {
  insertId: number | string;
  affectedRows: number;
}

/** The enqueue side of the ledger: new rows and their creation history, and reads. */
@Injectable()
export class JobLedgerRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * Writes the rows and one `pending` history row each, in the manager's transaction. Returns
   * the rows as stored, in request order.
   */
  async insert(manager: EntityManager, jobs: ValidatedJob[]): Promise<JobEntity[]> {
    // run_at is computed by the database so that it shares a clock with created_at.
    const placeholders = jobs
      .map(() => '(?, ?, ?, ?, ?, ?, ?, NOW(3) + INTERVAL ? MICROSECOND)')
      .join(', ');
    const parameters = jobs.flatMap((job) => [
      job.jobType,
      job.payloadJson,
      job.priority,
      job.maxAttempts,
      job.backoff?.strategy ?? null,
      job.backoff?.delayMs ?? null,
      job.backoff?.jitter ?? null,
      job.delayMs * 1000,
    ]);

    const result = await manager.query<InsertResult>(
      `INSERT INTO job_queue
         (job_type, payload, priority, max_attempts, backoff_strategy, backoff_delay_ms,
          backoff_jitter, run_at)
       VALUES ${placeholders}`,
      parameters,
    );

    // One multi-row INSERT gets consecutive ids from its first one.
    const firstId = Number(result.insertId);
    const lastId = firstId + jobs.length - 1;

    await manager.query(
      `INSERT INTO job_queue_history
         (job_id, from_status, to_status, attempt, occurred_at, source)
       SELECT id, NULL, status, 0, created_at, 'enqueue'
       FROM job_queue WHERE id BETWEEN ? AND ? ORDER BY id`,
      [firstId, lastId],
    );

    return manager.getRepository(JobEntity).find({
      where: { id: Between(firstId, lastId) },
      order: { id: 'ASC' },
    });
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

import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { Between, DataSource, EntityManager, In } from 'typeorm';

import { JobEntity, JobTransitionEntity } from '../../entities';
import { createMultiStatementPool, withPooledConnection } from '../database/multi-statement';
import { rowValues } from '../database/sql-values';
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

interface AutoIncrementSettings {
  lockMode: number | string;
  step: number | string;
}

/** What the last statement of a one-round-trip insert returns. */
interface InsertedGroup extends RowDataPacket {
  firstId: string | number;
  createdAt: Date;
}

/** The enqueue side of the ledger: new rows and their creation history, and reads. */
@Injectable()
export class JobLedgerRepository implements OnApplicationShutdown {
  private consecutiveIds: Promise<boolean> | undefined;
  private multiStatementPool: Pool | undefined;

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async onApplicationShutdown(): Promise<void> {
    await this.multiStatementPool?.end();
  }

  /**
   * Writes the rows of jobs without idempotency keys and their creation history in one round
   * trip: the transaction, the database time, both multi-row INSERTs and the commit go as one
   * multi-statement call. The same work as `insert` in its own transaction, less four round trips
   * of waiting per group, which bounded how fast concurrent single enqueues could be grouped.
   * Returns `undefined` (nothing written) where ids of one INSERT may not be consecutive; the
   * caller then takes the general path.
   */
  async insertInOneRoundTrip(jobs: ValidatedJob[]): Promise<JobEntity[] | undefined> {
    if (!(await this.consecutiveIdsGuaranteed(this.dataSource.manager))) {
      return undefined;
    }

    const [{ firstId, createdAt }] = await withPooledConnection(this.pool(), (connection) =>
      runGroupInsert(connection, jobs),
    );

    return jobs.map((job, index) => newRow(job, Number(firstId) + index, createdAt));
  }

  /** Connections of their own: TypeORM's do not accept several statements per call. */
  private pool(): Pool {
    this.multiStatementPool ??= createMultiStatementPool(this.dataSource, 4);

    return this.multiStatementPool;
  }

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
    // One database time for every row of the statement, read first so that the rows can be
    // built here rather than read back; run_at shares the clock of created_at.
    const createdAt = await databaseNow(manager);
    const parameters = rowValues(jobs, (job) => [
      job.jobType,
      job.payloadJson,
      job.priority,
      job.idempotencyKey,
      job.maxAttempts,
      job.backoff?.strategy ?? null,
      job.backoff?.delayMs ?? null,
      job.backoff?.jitter ?? null,
      createdAt,
      createdAt,
      new Date(createdAt.getTime() + job.delayMs),
    ]);

    const result = await manager.query<InsertResult>(
      `INSERT INTO job_queue
         (job_type, payload, priority, idempotency_key, max_attempts, backoff_strategy,
          backoff_delay_ms, backoff_jitter, created_at, updated_at, run_at)
       VALUES ${jobs.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
      parameters,
    );

    const firstId = Number(result.insertId);
    const rows = (await this.consecutiveIdsGuaranteed(manager))
      ? jobs.map((job, index) => newRow(job, firstId + index, createdAt))
      : await readBack(manager, firstId, jobs.length);

    // Plain VALUES, not INSERT … SELECT: the latter takes a table-wide auto-increment lock and
    // shared locks on job_queue, which deadlock with a concurrent enqueue.
    await manager.query(
      `INSERT INTO job_queue_history (job_id, from_status, to_status, attempt, occurred_at, source)
       VALUES ${rows.map(() => "(?, NULL, 'pending', 0, ?, 'enqueue')").join(', ')}`,
      rowValues(rows, (row) => [row.id, row.createdAt]),
    );

    return rows;
  }

  /**
   * Whether one multi-row INSERT always gets consecutive ids from its first one: true with
   * InnoDB's "traditional" (0) or "consecutive" (1) auto-increment lock mode and a step of 1.
   * Mode 2 ("interleaved", MySQL 8's default) may interleave concurrent inserts' ids, and then
   * the rows are read back. Asked once per process.
   */
  private consecutiveIdsGuaranteed(manager: EntityManager): Promise<boolean> {
    this.consecutiveIds ??= manager
      .query<AutoIncrementSettings[]>(
        'SELECT @@innodb_autoinc_lock_mode AS lockMode, @@auto_increment_increment AS step',
      )
      .then(([settings]) => Number(settings.lockMode) <= 1 && Number(settings.step) === 1);
    // A failed look is asked again next time rather than remembered.
    this.consecutiveIds.catch(() => (this.consecutiveIds = undefined));

    return this.consecutiveIds;
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

/**
 * The rows and their history in one transaction, as one call. Every value is a placeholder; the
 * database time and the first generated id pass between statements in session variables.
 */
async function runGroupInsert(
  connection: PoolConnection,
  jobs: ValidatedJob[],
): Promise<InsertedGroup[]> {
  const rowPlaceholders =
    '(?, ?, ?, NULL, ?, ?, ?, ?, @lq_now, @lq_now, @lq_now + INTERVAL ? MICROSECOND)';
  const historyValues = "(@lq_first + ?, NULL, 'pending', 0, @lq_now, 'enqueue')";
  const sql = `START TRANSACTION;
    SET @lq_now = NOW(3);
    INSERT INTO job_queue
      (job_type, payload, priority, idempotency_key, max_attempts, backoff_strategy,
       backoff_delay_ms, backoff_jitter, created_at, updated_at, run_at)
    VALUES ${jobs.map(() => rowPlaceholders).join(', ')};
    SET @lq_first = LAST_INSERT_ID();
    INSERT INTO job_queue_history (job_id, from_status, to_status, attempt, occurred_at, source)
    VALUES ${jobs.map(() => historyValues).join(', ')};
    COMMIT;
    SELECT @lq_first AS firstId, CAST(@lq_now AS DATETIME(3)) AS createdAt`;
  const parameters = rowValues(jobs, (job) => [
    job.jobType,
    job.payloadJson,
    job.priority,
    job.maxAttempts,
    job.backoff?.strategy ?? null,
    job.backoff?.delayMs ?? null,
    job.backoff?.jitter ?? null,
    job.delayMs * 1000,
  ]);
  const offsets = jobs.map((_, index) => index);

  // One result per statement; the last one is the SELECT.
  const [results] = await connection.query<RowDataPacket[][]>(sql, [...parameters, ...offsets]);

  return results[results.length - 1] as InsertedGroup[];
}

async function databaseNow(manager: EntityManager): Promise<Date> {
  const [{ now }] = await manager.query<Array<{ now: Date }>>('SELECT NOW(3) AS now');

  return now;
}

/** The row as the INSERT wrote it, with the columns the database would have defaulted. */
function newRow(job: ValidatedJob, id: number, createdAt: Date): JobEntity {
  return Object.assign(new JobEntity(), {
    id,
    jobType: job.jobType,
    payload: job.payloadJson,
    status: 'pending',
    attemptCount: 0,
    errorMessage: null,
    createdAt,
    updatedAt: createdAt,
    priority: job.priority,
    idempotencyKey: job.idempotencyKey,
    maxAttempts: job.maxAttempts,
    backoffStrategy: job.backoff?.strategy ?? null,
    backoffDelayMs: job.backoff?.delayMs ?? null,
    backoffJitter: job.backoff?.jitter ?? null,
    runAt: new Date(createdAt.getTime() + job.delayMs),
    dispatchedAt: null,
    startedAt: null,
    finishedAt: null,
    worker: null,
    lastEventId: null,
  } satisfies JobEntity);
}

async function readBack(
  manager: EntityManager,
  firstId: number,
  count: number,
): Promise<JobEntity[]> {
  const lastId = firstId + count - 1;
  const rows = await manager.getRepository(JobEntity).find({
    where: { id: Between(firstId, lastId) },
    order: { id: 'ASC' },
  });
  if (rows.length !== count) {
    throw new Error(
      `expected ${count} consecutive ids from ${firstId}; is auto_increment_increment 1?`,
    );
  }

  return rows;
}

function missingRow(job: ValidatedJob): never {
  throw new Error(`no ledger row for idempotency key ${job.idempotencyKey ?? '(none)'}`);
}

import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

import { bigintAsNumber } from './bigint-number.transformer';
import { JobStatus } from './job-status';

export type BackoffStrategy = 'fixed' | 'exponential';

/**
 * One row per job: the system of record. The first nine columns are the original design's and
 * keep its names and meanings; the rest serve retries, scheduling and auditing.
 */
@Entity({ name: 'job_queue' })
@Index('idx_job_queue_type_status', ['jobType', 'status'])
@Index('idx_job_queue_created_at', ['createdAt'])
@Index('idx_job_queue_undispatched', ['status', 'dispatchedAt', 'createdAt'])
export class JobEntity {
  @PrimaryColumn({
    type: 'bigint',
    unsigned: true,
    generated: 'increment',
    transformer: bigintAsNumber,
  })
  id!: number;

  @Column({ name: 'job_type', type: 'varchar', length: 100 })
  jobType!: string;

  /** JSON text. MEDIUMTEXT rather than TEXT so that the default 256 KiB limit fits. */
  @Column({ type: 'mediumtext' })
  payload!: string;

  @Column({ type: 'varchar', length: 50, default: 'pending' })
  status!: JobStatus;

  /** How many times the job was started. */
  @Column({ name: 'attempt_count', type: 'int', default: 0 })
  attemptCount!: number;

  @Column({ name: 'error_message', type: 'text', nullable: true })
  errorMessage!: string | null;

  @Column({
    name: 'created_at',
    type: 'datetime',
    precision: 3,
    default: () => 'CURRENT_TIMESTAMP(3)',
  })
  createdAt!: Date;

  @Column({
    name: 'updated_at',
    type: 'datetime',
    precision: 3,
    default: () => 'CURRENT_TIMESTAMP(3)',
    onUpdate: 'CURRENT_TIMESTAMP(3)',
  })
  updatedAt!: Date;

  /** 0 is the lowest; a larger number runs first. */
  @Column({ type: 'int', default: 0 })
  priority!: number;

  /** A producer's key: the same key twice returns the first job and enqueues nothing. */
  @Column({ name: 'idempotency_key', type: 'varchar', length: 255, nullable: true, unique: true })
  idempotencyKey!: string | null;

  @Column({ name: 'max_attempts', type: 'int', default: 1 })
  maxAttempts!: number;

  @Column({ name: 'backoff_strategy', type: 'varchar', length: 20, nullable: true })
  backoffStrategy!: BackoffStrategy | null;

  @Column({ name: 'backoff_delay_ms', type: 'int', unsigned: true, nullable: true })
  backoffDelayMs!: number | null;

  /** 0 to 1: the share of each backoff delay that is randomised. */
  @Column({ name: 'backoff_jitter', type: 'double', nullable: true })
  backoffJitter!: number | null;

  /** When the job may next run: its scheduled time, or the end of a retry's backoff. */
  @Column({ name: 'run_at', type: 'datetime', precision: 3, nullable: true })
  runAt!: Date | null;

  /** When Redis first held the job; NULL while it still has to be dispatched. */
  @Column({ name: 'dispatched_at', type: 'datetime', precision: 3, nullable: true })
  dispatchedAt!: Date | null;

  @Column({ name: 'started_at', type: 'datetime', precision: 3, nullable: true })
  startedAt!: Date | null;

  @Column({ name: 'finished_at', type: 'datetime', precision: 3, nullable: true })
  finishedAt!: Date | null;

  /** The worker that ran the latest attempt. */
  @Column({ type: 'varchar', length: 255, nullable: true })
  worker!: string | null;

  /** The id of the last queue event applied to this row; older events are ignored. */
  @Column({ name: 'last_event_id', type: 'varchar', length: 40, nullable: true })
  lastEventId!: string | null;
}

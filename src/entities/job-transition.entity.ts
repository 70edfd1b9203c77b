import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

import { bigintAsNumber } from './bigint-number.transformer';
import { JobStatus } from './job-status';

/** How a transition reached the ledger. */
export type TransitionSource = 'enqueue' | 'event' | 'repair';

/**
 * The append-only history: one row per status change of a job. Ordering by `id` replays a
 * job's life in the order the changes happened.
 */
@Entity({ name: 'job_queue_history' })
@Index('idx_job_queue_history_job', ['jobId', 'id'])
@Index('idx_job_queue_history_occurred_at', ['occurredAt'])
export class JobTransitionEntity {
  @PrimaryColumn({
    type: 'bigint',
    unsigned: true,
    generated: 'increment',
    transformer: bigintAsNumber,
  })
  id!: number;

  @Column({ name: 'job_id', type: 'bigint', unsigned: true, transformer: bigintAsNumber })
  jobId!: number;

  /** NULL for the row that records the job's creation. */
  @Column({ name: 'from_status', type: 'varchar', length: 50, nullable: true })
  fromStatus!: JobStatus | null;

  @Column({ name: 'to_status', type: 'varchar', length: 50 })
  toStatus!: JobStatus;

  /** The attempt the transition belongs to (0 before the first start). */
  @Column({ type: 'int' })
  attempt!: number;

  @Column({ name: 'error_message', type: 'text', nullable: true })
  errorMessage!: string | null;

  @Column({ type: 'varchar', length: 255, nullable: true })
  worker!: string | null;

  /** When the change happened: Redis time for queue events, database time at enqueue. */
  @Column({ name: 'occurred_at', type: 'datetime', precision: 3 })
  occurredAt!: Date;

  @Column({
    name: 'recorded_at',
    type: 'datetime',
    precision: 3,
    default: () => 'CURRENT_TIMESTAMP(3)',
  })
  recordedAt!: Date;

  @Column({ type: 'varchar', length: 20 })
  source!: TransitionSource;

  /** The queue event the transition was read from. */
  @Column({ name: 'event_id', type: 'varchar', length: 40, nullable: true })
  eventId!: string | null;

  /** Why, where the statuses alone do not say (a stalled worker, a repair and its evidence). */
  @Column({ type: 'varchar', length: 255, nullable: true })
  note!: string | null;
}

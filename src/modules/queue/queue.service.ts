import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';

import { JobEntity, JobTransitionEntity } from '../../entities';
import { AfterCommitDispatchSubscriber } from './after-commit-dispatch.subscriber';
import {
  EnqueueRequest,
  JobOptions,
  validateEnqueueRequest,
  ValidatedJob,
} from './enqueue-request';
import { JobDispatcher } from './job-dispatcher.service';
import { EnqueueBatcher } from './enqueue-batcher';
import { InsertOutcome, JobLedgerRepository } from './job-ledger.repository';
import { LedgerBacklogGate } from './ledger-backlog.gate';
import { QueueRegistry } from './queue-registry.service';
import { MAX_BATCH_SIZE } from './queue.constants';
import { JobValidationError, LedgerUnavailableError } from './queue.errors';

/** Options of one enqueue call. */
export interface EnqueueOptions extends JobOptions {
  /**
   * A TypeORM `EntityManager` whose transaction the ledger row joins. The job reaches Redis only
   * after that transaction commits, and never if it rolls back.
   */
  manager?: EntityManager;
}

/**
 * What producers inject. Every job is written to the `job_queue` ledger first and then handed
 * to BullMQ; the ledger is the system of record.
 */
@Injectable()
export class QueueService {
  constructor(
    private readonly registry: QueueRegistry,
    private readonly ledger: JobLedgerRepository,
    private readonly dispatcher: JobDispatcher,
    private readonly afterCommit: AfterCommitDispatchSubscriber,
    private readonly backlogGate: LedgerBacklogGate,
  ) {}

  private readonly batcher = new EnqueueBatcher(
    (jobs) => this.insertInOwnTransaction(this.ledger.defaultManager, jobs),
    (outcome) => this.dispatcher.dispatchFresh(outcome.created, performance.now()),
  );

  /**
   * Accepts one job: validates it, writes its ledger row and sends it to Redis.
   *
   * @param jobType - a declared job type
   * @param payload - any JSON-serialisable value, at most `payloadLimitBytes` as JSON
   * @returns the ledger row, status `pending`
   * @throws JobValidationError naming the field and the rule; nothing is written
   * @throws LedgerUnavailableError when the database cannot be written; nothing is sent
   * @throws LedgerBehindError when the ledger is too far behind on the queue; nothing is written
   */
  async enqueue(
    jobType: string,
    payload: unknown,
    options: EnqueueOptions = {},
  ): Promise<JobEntity> {
    const { manager, ...jobOptions } = options;
    const job = this.validate({ ...jobOptions, jobType, payload });
    if (manager) {
      const [row] = await this.accept([job], manager);

      return row;
    }

    // Without a caller's transaction, concurrent enqueues share one commit and one send.
    return this.admitted([job], () => this.batcher.submit(job));
  }

  /**
   * Accepts a batch atomically: every job is valid and written, or none is.
   *
   * @param requests - at most 1000 jobs
   * @param options - `manager` to join a caller's transaction
   * @returns the ledger rows in request order
   * @throws JobValidationError naming the offending `jobs[i].field`; nothing is written
   * @throws LedgerBehindError when the ledger is too far behind on a queue; nothing is written
   */
  async enqueueMany(
    requests: EnqueueRequest[],
    options: { manager?: EntityManager } = {},
  ): Promise<JobEntity[]> {
    if (!Array.isArray(requests) || requests.length === 0 || requests.length > MAX_BATCH_SIZE) {
      throw new JobValidationError('jobs', `expected an array of 1 to ${MAX_BATCH_SIZE} jobs`);
    }

    const jobs = requests.map((request, index) => this.validate(request, `jobs[${index}].`));

    return this.accept(jobs, options.manager);
  }

  /**
   * The ledger row of a job, or `null` if there is none.
   * @throws LedgerUnavailableError when the database cannot be read
   */
  async get(id: number): Promise<JobEntity | null> {
    return readLedger(() => this.ledger.findById(id));
  }

  /**
   * Every recorded transition of a job, oldest first; empty if the job does not exist.
   * @throws LedgerUnavailableError when the database cannot be read
   */
  async history(id: number): Promise<JobTransitionEntity[]> {
    return readLedger(() => this.ledger.history(id));
  }

  private validate(request: EnqueueRequest, path = ''): ValidatedJob {
    return validateEnqueueRequest(
      request,
      this.registry.catalogue,
      { payloadLimitBytes: this.registry.options.payloadLimitBytes },
      path,
    );
  }

  /**
   * Runs `enqueue` unless the jobs must be refused before anything is written: Redis down (if so
   * configured), ledger behind. The backlog gate holds the jobs' entries in flight until
   * `enqueue` is over; a job in a caller's transaction reaches Redis only after that commits,
   * and may be reported as landed by the gate's next renewal, which may come before.
   */
  private async admitted<T>(jobs: ValidatedJob[], enqueue: () => Promise<T>): Promise<T> {
    if (this.registry.options.enqueueWhenRedisDown === 'refuse') {
      await this.dispatcher.assertRedisAvailable();
    }

    const queues = jobs.map((job) => job.jobType);
    await this.backlogGate.admit(queues);
    try {
      return await enqueue();
    } finally {
      this.backlogGate.release(queues);
    }
  }

  private accept(jobs: ValidatedJob[], manager?: EntityManager): Promise<JobEntity[]> {
    return this.admitted(jobs, () => this.writeAndSend(jobs, manager));
  }

  private async writeAndSend(jobs: ValidatedJob[], manager?: EntityManager): Promise<JobEntity[]> {
    const queryRunner = manager?.queryRunner;
    if (manager && queryRunner?.isTransactionActive) {
      const { rows, created } = await this.insertRacingForKeys(manager, jobs);
      this.afterCommit.defer(queryRunner, created);

      return rows;
    }

    const { rows, created } = await this.insertInOwnTransaction(
      manager ?? this.ledger.defaultManager,
      jobs,
    );
    await this.dispatcher.dispatchFresh(created, performance.now());

    return rows;
  }

  private async insertInOwnTransaction(
    manager: EntityManager,
    jobs: ValidatedJob[],
  ): Promise<InsertOutcome> {
    for (let attempt = 1; ; attempt++) {
      try {
        const rows = this.canInsertInOneRoundTrip(manager, jobs)
          ? await this.ledger.insertInOneRoundTrip(jobs)
          : undefined;
        if (rows) {
          return { rows, created: rows };
        }

        return await manager.transaction((transactional) =>
          this.insertRacingForKeys(transactional, jobs),
        );
      } catch (error) {
        // InnoDB may pick this transaction as a deadlock victim; it is safe to run it again.
        if (!isDeadlock(error) || attempt >= DEADLOCK_RETRIES) {
          throw new LedgerUnavailableError(error);
        }
      }
    }
  }

  /** Jobs with idempotency keys take the general path, which looks for existing rows first. */
  private canInsertInOneRoundTrip(manager: EntityManager, jobs: ValidatedJob[]): boolean {
    return (
      manager === this.ledger.defaultManager && jobs.every((job) => job.idempotencyKey === null)
    );
  }

  /**
   * Two producers may send the same idempotency key at once: the unique index makes the later
   * insert wait for the earlier commit and then fail; a second look then finds the first row.
   */
  private async insertRacingForKeys(
    manager: EntityManager,
    jobs: ValidatedJob[],
  ): Promise<InsertOutcome> {
    try {
      return await this.ledger.insert(manager, jobs);
    } catch (error) {
      const keyed = jobs.some((job) => job.idempotencyKey !== null);
      if (!keyed || !isDuplicateKeyError(error)) {
        throw error;
      }

      return this.ledger.insert(manager, jobs, true);
    }
  }
}

const DEADLOCK_RETRIES = 3;

async function readLedger<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    throw new LedgerUnavailableError(error, 'the job ledger is unavailable; try again later');
  }
}

function driverErrorCode(error: unknown): string | undefined {
  const wrapped = error as { driverError?: { code?: string }; code?: string } | undefined;

  return wrapped?.driverError?.code ?? wrapped?.code;
}

function isDuplicateKeyError(error: unknown): boolean {
  return driverErrorCode(error) === 'ER_DUP_ENTRY';
}

function isDeadlock(error: unknown): boolean {
  return driverErrorCode(error) === 'ER_LOCK_DEADLOCK';
}

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
import { JobLedgerRepository } from './job-ledger.repository';
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
  ) {}

  /**
   * Accepts one job: validates it, writes its ledger row and sends it to Redis.
   *
   * @param jobType - a declared job type
   * @param payload - any JSON-serialisable value, at most `payloadLimitBytes` as JSON
   * @returns the ledger row, status `pending`
   * @throws JobValidationError naming the field and the rule; nothing is written
   * @throws LedgerUnavailableError when the database cannot be written; nothing is sent
   */
  async enqueue(
    jobType: string,
    payload: unknown,
    options: EnqueueOptions = {},
  ): Promise<JobEntity> {
    const { manager, ...jobOptions } = options;
    const [row] = await this.accept([this.validate({ ...jobOptions, jobType, payload })], manager);

    return row;
  }

  /**
   * Accepts a batch atomically: every job is valid and written, or none is.
   *
   * @param requests - at most 1000 jobs
   * @param options - `manager` to join a caller's transaction
   * @returns the ledger rows in request order
   * @throws JobValidationError naming the offending `jobs[i].field`; nothing is written
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

  /** The ledger row of a job, or `null` if there is none. */
  async get(id: number): Promise<JobEntity | null> {
    return this.ledger.findById(id);
  }

  /** Every recorded transition of a job, oldest first; empty if the job does not exist. */
  async history(id: number): Promise<JobTransitionEntity[]> {
    return this.ledger.history(id);
  }

  private validate(request: EnqueueRequest, path = ''): ValidatedJob {
    return validateEnqueueRequest(
      request,
      this.registry.catalogue,
      { payloadLimitBytes: this.registry.options.payloadLimitBytes },
      path,
    );
  }

  private async accept(jobs: ValidatedJob[], manager?: EntityManager): Promise<JobEntity[]> {
    const queryRunner = manager?.queryRunner;
    if (manager && queryRunner?.isTransactionActive) {
      const rows = await this.ledger.insert(manager, jobs);
      this.afterCommit.defer(queryRunner, rows);

      return rows;
    }

    const rows = await this.insertInOwnTransaction(manager ?? this.ledger.defaultManager, jobs);
    await this.dispatcher.dispatchFresh(rows, performance.now());

    return rows;
  }

  private async insertInOwnTransaction(
    manager: EntityManager,
    jobs: ValidatedJob[],
  ): Promise<JobEntity[]> {
    try {
      return await manager.transaction((transactional) => this.ledger.insert(transactional, jobs));
    } catch (error) {
      throw new LedgerUnavailableError(error);
    }
  }
}

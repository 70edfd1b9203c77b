import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
} from '@nestjs/common';
import { Job, UnrecoverableError, Worker } from 'bullmq';

import { fromBullJobId, startsBeforeOf } from '../queue/queue.constants';
import { resumedBackoff } from '../queue/resumed-backoff';
import { AttemptErrorLog } from './attempt-error-log';
import { redactPayloadValues } from './error-redaction';
import { HandlerRegistry } from './handler-registry.service';
import { JobContext } from './job-context.interface';
import { JobLog } from './job-log';
import { LazyAbortSignal } from './lazy-abort-signal';
import { LedgerBacklogWatch } from './ledger-backlog.watch';
import { jobTypesToRun } from './job-types-to-run';
import { QuarantineRunner } from './quarantine-runner.service';
import {
  BACKLOG_CHECK_INTERVAL_MS,
  FORCED_CLOSE_WAIT_MS,
  MAX_ERROR_MESSAGE_LENGTH,
  QUARANTINE_MAX_STALLED_COUNT,
  WORKER_MODULE_OPTIONS,
} from './worker.constants';
import { WorkerModuleOptions } from './worker-module-options.interface';

/**
 * Runs one BullMQ worker per configured job type and hands each job to its `@JobHandler`. It
 * needs no database: the ledger learns every transition from the queues' event streams. A job
 * that stalled before (its worker died while running it) is suspect: with quarantine on, it
 * runs in a child process, so that a job which kills its process cannot take this one down.
 */
@Injectable()
export class JobWorkerProcessor implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(JobWorkerProcessor.name);
  private readonly workers: Worker[] = [];
  private readonly shutdown = new AbortController();
  /**
   * One signal per running job, aborted with the others when a shutdown abandons them. Handing
   * every job the one shutdown signal would let a handler that forgets to remove its listener
   * slow down every later job (adding a listener walks the ones already there).
   */
  private readonly jobSignals = new Set<LazyAbortSignal>();
  private readonly running = new Set<Promise<unknown>>();
  private readonly attemptErrors: AttemptErrorLog;
  /** Made at bootstrap: the application's log levels are not yet set when this is constructed. */
  private jobLog: JobLog | undefined;
  private backlogWatch: LedgerBacklogWatch | undefined;

  constructor(
    @Inject(WORKER_MODULE_OPTIONS) private readonly options: WorkerModuleOptions,
    private readonly handlers: HandlerRegistry,
    private readonly quarantine: QuarantineRunner,
  ) {
    this.attemptErrors = new AttemptErrorLog(options.redisUrl);
  }

  get jobTypes(): string[] {
    return jobTypesToRun(this.options);
  }

  /** Job types whose worker is held back now because the ledger is too far behind. */
  get heldForLedger(): string[] {
    return this.backlogWatch?.heldQueues ?? [];
  }

  onApplicationBootstrap(): void {
    this.assertKnownTypes();
    this.handlers.assertExactlyOneHandler(this.jobTypes);
    this.jobLog = new JobLog(this.logger);

    for (const jobType of this.jobTypes) {
      this.workers.push(this.startWorker(jobType));
    }
    this.watchLedgerBacklog();

    this.logger.log({
      message: 'workers started',
      jobTypes: this.jobTypes,
      quarantine: this.quarantine.enabled ? 'child' : 'off',
      maxStalledCount: this.maxStalledCount,
      settings: { backoffStrategy: resumedBackoff },
    });
  }

  /** Stops taking jobs, lets running ones finish within the timeout, then abandons them. */
  async beforeApplicationShutdown(): Promise<void> {
    // First, so that it cannot resume a worker the shutdown has paused.
    this.backlogWatch?.stop();
    // pause(true) stops fetching without waiting; close() would, and a later close(true) only
    // returns that same pending close, so the timeout could never be enforced.
    await withDeadline(Promise.all(this.workers.map((worker) => worker.pause(true))));
    this.logger.log({ message: 'workers stopped taking jobs', running: this.running.size });

    const finished = await Promise.race([
      Promise.allSettled(this.running).then(() => true),
      delay(this.options.shutdownTimeoutMs).then(() => false),
    ]);
    if (!finished) {
      // Abandoned jobs keep their lock until it expires; then BullMQ retries them as stalled.
      this.logger.warn({
        message: 'shutdown timeout: abandoning running jobs',
        jobs: this.running.size,
      });
      this.shutdown.abort();
      this.jobSignals.forEach((signal) => signal.abort());
    }

    // Even a forced close waits for Redis; an unreachable Redis must not hold the exit.
    await withDeadline(Promise.all(this.workers.map((worker) => worker.close(true))));
    this.attemptErrors.close();
  }

  /** Off (no watch, no Redis connection of its own) when the limit is 0 or unset. */
  private watchLedgerBacklog(): void {
    const limit = this.options.ledgerBacklogLimit ?? 0;
    if (limit <= 0) {
      return;
    }

    const byQueue = new Map(this.jobTypes.map((jobType, index) => [jobType, this.workers[index]]));
    this.backlogWatch = new LedgerBacklogWatch(
      {
        redisUrl: this.options.redisUrl,
        prefix: this.options.prefix,
        limit,
        intervalMs: this.options.ledgerBacklogCheckMs ?? BACKLOG_CHECK_INTERVAL_MS,
      },
      byQueue,
    );
    this.backlogWatch.start();
  }

  private startWorker(jobType: string): Worker {
    const definition = this.options.catalogue.find((type) => type.name === jobType);
    const worker = new Worker(jobType, (job) => this.process(jobType, job), {
      connection: { url: this.options.redisUrl, maxRetriesPerRequest: null },
      prefix: this.options.prefix,
      concurrency:
        this.options.concurrencyByType[jobType] ??
        definition?.concurrency ??
        this.options.concurrency,
      name: this.options.workerName,
      lockDuration: this.options.lockDurationMs,
      stalledInterval: this.options.stalledIntervalMs,
      maxStalledCount: this.maxStalledCount,
      settings: { backoffStrategy: resumedBackoff },
    });

    worker.on('error', (error) =>
      this.logger.error({ message: 'worker error', jobType, error: error.message }),
    );
    worker.on('failed', (job, error) => this.logFailure(jobType, job, error));

    return worker;
  }

  private process(jobType: string, job: Job): Promise<unknown> {
    const run = this.runHandler(jobType, job);
    this.running.add(run);
    void run.catch(() => undefined).finally(() => this.running.delete(run));

    return run;
  }

  private async runHandler(jobType: string, job: Job): Promise<unknown> {
    const started = performance.now();
    const fields = { jobType, jobId: fromBullJobId(job.id ?? ''), ...attemptOf(job, 1) };
    this.jobLog?.started(fields);
    const jobSignal = new LazyAbortSignal();
    this.jobSignals.add(jobSignal);

    try {
      const result = await this.invokeHandler(job, {
        id: fields.jobId ?? 0,
        jobType,
        attempt: fields.attempt,
        maxAttempts: fields.maxAttempts,
        get signal() {
          return jobSignal.signal;
        },
      });
      this.jobLog?.completed(fields, started);

      return result;
    } catch (error) {
      if (this.shutdown.signal.aborted) {
        // Abandoned at shutdown, not failed: never settle, so BullMQ records no failure and
        // retries the job as stalled once its lock expires.
        return new Promise<never>(() => undefined);
      }

      const bounded = boundedError(error, job.data, this.options.redactErrors);
      await this.recordAttemptError(jobType, job, bounded);
      throw bounded;
    } finally {
      this.jobSignals.delete(jobSignal);
    }
  }

  private async invokeHandler(job: Job, context: JobContext): Promise<unknown> {
    if (!this.quarantine.enabled || job.stalledCounter === 0) {
      return this.handlers.handlerFor(context.jobType)(job.data, context);
    }

    const { id, jobType, attempt, maxAttempts } = context;
    this.logger.warn({
      message: 'job stalled before; running it in quarantine',
      jobType,
      jobId: id,
      attempt,
      maxAttempts,
      stalledCount: job.stalledCounter,
    });

    return this.quarantine.run({
      jobType,
      payload: job.data,
      context: { id, jobType, attempt, maxAttempts },
      stalledCount: job.stalledCounter,
    });
  }

  /**
   * With quarantine, a poison job kills this process once at most: its next run is in a child.
   * The jobs that shared the process with it stall through no fault of their own, so they get
   * more room than BullMQ's default of one stall.
   */
  private get maxStalledCount(): number {
    return (
      this.options.maxStalledCount ?? (this.options.quarantine ? QUARANTINE_MAX_STALLED_COUNT : 1)
    );
  }

  /** Best effort: without it the ledger falls back to BullMQ's latest failure reason. */
  private async recordAttemptError(jobType: string, job: Job, error: Error): Promise<void> {
    try {
      await this.attemptErrors.record(job, startsBeforeOf(job.name), error.message);
    } catch (failure) {
      this.logger.warn({
        message: "could not keep the attempt's error for the ledger",
        jobType,
        jobId: fromBullJobId(job.id ?? ''),
        error: failure instanceof Error ? failure.message : String(failure),
      });
    }
  }

  private logFailure(jobType: string, job: Job | undefined, error: Error): void {
    const final =
      (job?.attemptsMade ?? 0) >= (job?.opts.attempts ?? 1) || error instanceof UnrecoverableError;
    const fields = {
      message: final ? 'job failed' : 'job attempt failed; will retry',
      jobType,
      jobId: job?.id ? fromBullJobId(job.id) : undefined,
      // BullMQ has counted this attempt by the time it reports the failure.
      ...(job ? attemptOf(job, 0) : { attempt: 0, maxAttempts: 1 }),
      error: error.message,
    };

    if (final) {
      this.logger.error({ ...fields, stack: error.stack });
    } else {
      this.logger.warn(fields);
    }
  }

  private assertKnownTypes(): void {
    const known = new Set(this.options.catalogue.map((definition) => definition.name));
    const unknown = this.jobTypes.filter((jobType) => !known.has(jobType));
    if (unknown.length > 0) {
      throw new Error(
        `WORKER_JOB_TYPES names undeclared job types: ${unknown.join(', ')}; expected some of ${[...known].join(', ')}`,
      );
    }
  }
}

/**
 * The attempt's number and the most there can be, counted over every send of the job: a job
 * sent again after Redis lost it names the starts the ledger had counted (`startsBeforeOf`),
 * while BullMQ counts from zero again. `pending` is 1 while the attempt has not been counted.
 */
function attemptOf(job: Job, pending: 0 | 1): { attempt: number; maxAttempts: number } {
  const startsBefore = startsBeforeOf(job.name);

  return {
    attempt: startsBefore + job.attemptsMade + pending,
    maxAttempts: startsBefore + (job.opts.attempts ?? 1),
  };
}

/**
 * BullMQ records the message in the ledger and the stack in the job's hash: make the thrown
 * value an Error whose message is bounded and, unless configured otherwise, free of payload
 * values (also in the first line of its stack, which the logs show).
 */
function boundedError(thrown: unknown, payload: unknown, redact: boolean): Error {
  const error = thrown instanceof Error ? thrown : new Error(`non-Error thrown: ${String(thrown)}`);
  const original = error.message;
  let message = redact ? redactPayloadValues(original, payload) : original;
  if (message.length > MAX_ERROR_MESSAGE_LENGTH) {
    message = `${message.slice(0, MAX_ERROR_MESSAGE_LENGTH - 1)}…`;
  }

  if (message !== original) {
    error.message = message;
    error.stack = error.stack?.replace(original, message);
  }

  return error;
}

function withDeadline(work: Promise<unknown>): Promise<unknown> {
  return Promise.race([work, delay(FORCED_CLOSE_WAIT_MS)]);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

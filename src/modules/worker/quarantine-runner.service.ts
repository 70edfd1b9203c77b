import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';

import { QuarantineProcess, QuarantineProcessError } from './quarantine-process';
import { QuarantineRunMessage, restoreError } from './quarantine.protocol';
import {
  QUARANTINE_IDLE_TIMEOUT_MS,
  QUARANTINE_START_TIMEOUT_MS,
  WORKER_MODULE_OPTIONS,
} from './worker.constants';
import { QuarantineOptions, WorkerModuleOptions } from './worker-module-options.interface';

/** A job to run in quarantine, and how often it stalled (for the error if its process dies). */
export interface QuarantinedJob extends Omit<QuarantineRunMessage, 'kind' | 'requestId'> {
  stalledCount: number;
}

/**
 * Runs suspect jobs (jobs whose worker died under them before) in one child process, one job at
 * a time, so that a job which kills its process kills only that child. The child is started
 * when a suspect job arrives and no child is running, ends after a minute without jobs, and is
 * killed at shutdown.
 */
@Injectable()
export class QuarantineRunner implements OnApplicationShutdown {
  private readonly logger = new Logger(QuarantineRunner.name);
  private process: QuarantineProcess | undefined;
  /** One job at a time: two jobs in one child would let a poison job take the other down. */
  private lane: Promise<unknown> = Promise.resolve();
  /** Jobs handed to `run` that have not finished yet. */
  private pending = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(@Inject(WORKER_MODULE_OPTIONS) private readonly options: WorkerModuleOptions) {}

  get enabled(): boolean {
    return this.options.quarantine !== undefined;
  }

  /**
   * Resolves with the handler's result or rejects with its error, as an in-process run would.
   * If the child ends or hangs first, rejects with an error that says so.
   */
  run(job: QuarantinedJob): Promise<unknown> {
    this.pending += 1;
    clearTimeout(this.idleTimer);
    const turn = this.lane.then(() => this.runNow(job)).finally(() => this.jobFinished());
    this.lane = turn.catch(() => undefined);

    return turn;
  }

  /** Runs after the workers have stopped: a child still running a job is abandoned with it. */
  onApplicationShutdown(): void {
    this.closed = true;
    clearTimeout(this.idleTimer);
    this.process?.kill();
  }

  /** A child that sits idle holds a whole application's memory: let it go after a while. */
  private jobFinished(): void {
    this.pending -= 1;
    if (this.pending > 0 || this.closed) {
      return;
    }

    this.idleTimer = setTimeout(() => {
      if (this.pending === 0 && this.process?.alive) {
        this.logger.log({ message: 'quarantine process idle; ending it', pid: this.process.pid });
        this.process.retire();
      }
    }, QUARANTINE_IDLE_TIMEOUT_MS).unref();
  }

  private async runNow(job: QuarantinedJob): Promise<unknown> {
    const settings = this.settings();
    const { stalledCount, ...request } = job;
    try {
      const child = await this.readyProcess(settings);
      const outcome = await child.run(request, settings.runTimeoutMs);
      if (!outcome.completed) {
        throw restoreError(outcome.error);
      }

      return outcome.result;
    } catch (error) {
      if (!(error instanceof QuarantineProcessError)) {
        throw error;
      }

      this.logger.warn({
        message: 'quarantine process gave no answer',
        jobType: job.jobType,
        jobId: job.context.id,
        reason: error.message,
      });
      throw new Error(`${error.message} (the job had stalled ${times(stalledCount)})`, {
        cause: error,
      });
    }
  }

  private async readyProcess(settings: QuarantineOptions): Promise<QuarantineProcess> {
    if (this.closed) {
      throw new Error('the worker is shutting down');
    }

    if (!this.process?.alive) {
      this.process = await this.startProcess(settings);
    }

    return this.process;
  }

  private async startProcess(settings: QuarantineOptions): Promise<QuarantineProcess> {
    // The child reads the same environment, so it builds the same configuration and handlers.
    const env = { ...process.env, ...settings.childEnv };
    const started = performance.now();
    const child = await QuarantineProcess.start(settings.entry, env, QUARANTINE_START_TIMEOUT_MS);
    this.logger.log({
      message: 'quarantine process started',
      pid: child.pid,
      durationMs: Math.round(performance.now() - started),
    });
    if (this.closed) {
      child.kill();
    }

    return child;
  }

  private settings(): QuarantineOptions {
    if (!this.options.quarantine) {
      throw new Error('quarantine is off; the worker should have run this job in process');
    }

    return this.options.quarantine;
  }
}

function times(count: number): string {
  return count === 1 ? '1 time' : `${count} times`;
}

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

/** One child process and the jobs queued for it; a lane runs one job at a time. */
interface Lane {
  process: QuarantineProcess | undefined;
  /** One job at a time: two jobs in one child would let a poison job take the other down. */
  tail: Promise<unknown>;
  /** Jobs handed to this lane that have not finished yet. */
  pending: number;
}

/**
 * Runs suspect jobs (jobs whose worker died under them before) in child processes, one job per
 * child at a time, so that a job which kills its process kills only its child. A worker that
 * dies takes all its running jobs with it, and they all come back suspect: several children
 * (`processes`) let them run again side by side. A child is started when its lane gets a job
 * and has none running, the children end after a minute without jobs, and are killed at
 * shutdown.
 */
@Injectable()
export class QuarantineRunner implements OnApplicationShutdown {
  private readonly logger = new Logger(QuarantineRunner.name);
  private lanes: Lane[] = [];
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
    clearTimeout(this.idleTimer);
    const lane = this.leastBusyLane();
    lane.pending += 1;
    const turn = lane.tail.then(() => this.runNow(lane, job)).finally(() => this.jobFinished(lane));
    lane.tail = turn.catch(() => undefined);

    return turn;
  }

  /** Runs after the workers have stopped: a child still running a job is abandoned with it. */
  onApplicationShutdown(): void {
    this.closed = true;
    clearTimeout(this.idleTimer);
    this.lanes.forEach((lane) => lane.process?.kill());
  }

  private leastBusyLane(): Lane {
    if (this.lanes.length === 0) {
      this.lanes = Array.from({ length: this.settings().processes }, () => ({
        process: undefined,
        tail: Promise.resolve(),
        pending: 0,
      }));
    }

    return this.lanes.reduce((best, lane) => (lane.pending < best.pending ? lane : best));
  }

  /** Idle children hold a whole application's memory each: let them go after a while. */
  private jobFinished(lane: Lane): void {
    lane.pending -= 1;
    if (this.lanes.some((other) => other.pending > 0) || this.closed) {
      return;
    }

    this.idleTimer = setTimeout(() => {
      for (const idle of this.lanes.filter((other) => other.pending === 0)) {
        if (idle.process?.alive) {
          this.logger.log({ message: 'quarantine process idle; ending it', pid: idle.process.pid });
          idle.process.retire();
        }
      }
    }, QUARANTINE_IDLE_TIMEOUT_MS).unref();
  }

  private async runNow(lane: Lane, job: QuarantinedJob): Promise<unknown> {
    const settings = this.settings();
    const { stalledCount, ...request } = job;
    try {
      const child = await this.readyProcess(lane, settings);
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

  private async readyProcess(lane: Lane, settings: QuarantineOptions): Promise<QuarantineProcess> {
    if (this.closed) {
      throw new Error('the worker is shutting down');
    }

    if (!lane.process?.alive) {
      lane.process = await this.startProcess(settings);
    }

    return lane.process;
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

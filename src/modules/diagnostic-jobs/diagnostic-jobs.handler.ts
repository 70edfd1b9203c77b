import { appendFileSync } from 'node:fs';

import { Inject, Injectable } from '@nestjs/common';

import { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.constants';

import { JobContext } from '../worker/job-context.interface';
import { JobHandler } from '../worker/job-handler.decorator';
import { UnrecoverableJobError } from '../worker/unrecoverable-job.error';

interface SleepPayload {
  ms?: number;
}

interface FailPayload {
  /** Fail the first `times` attempts, then succeed. */
  times?: number;
  /** Fail at once, without retries. */
  unrecoverable?: boolean;
  /** Repeated in the error message, as careless handlers do with their input. */
  echo?: string;
  /** Makes the error message this many words longer. */
  noise?: number;
}

const MAX_SLEEP_MS = 10 * 60 * 1000;

/**
 * Waits `ms`, or rejects when `signal` aborts. The signal is the worker's, shared by every job it
 * runs: the listener must go when the wait ends, or each job leaves one behind and every later
 * `addEventListener` walks them all (about 200 us per job after 22,000 jobs).
 */
function waitUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new Error('aborted by worker shutdown'));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The diagnostic handlers. With `DIAGNOSTIC_EXECUTION_LOG` set, each start and completion is
 * appended to that file ("start <id> <attempt>", "done <id> <attempt>"), so that fault drills
 * can count real executions independently of the ledger.
 */
@Injectable()
export class DiagnosticJobsHandler {
  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  @JobHandler('diag_noop')
  noop(_payload: unknown, context: JobContext): Promise<null> {
    this.record('start', context);
    this.record('done', context);

    return Promise.resolve(null);
  }

  @JobHandler('diag_noop_fifo')
  noopInArrivalOrder(payload: unknown, context: JobContext): Promise<null> {
    return this.noop(payload, context);
  }

  /** A poison job: kills its own worker process on every attempt. */
  @JobHandler('diag_crash')
  crash(_payload: unknown, context: JobContext): Promise<never> {
    this.record('start', context);
    process.kill(process.pid, 'SIGKILL');

    return new Promise<never>(() => undefined);
  }

  @JobHandler('diag_sleep')
  async sleep(payload: SleepPayload, context: JobContext): Promise<{ sleptMs: number }> {
    this.record('start', context);
    const ms = payload?.ms;
    if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 0 || ms > MAX_SLEEP_MS) {
      throw new UnrecoverableJobError(`payload.ms: expected an integer from 0 to ${MAX_SLEEP_MS}`);
    }

    await waitUnlessAborted(ms, context.signal);

    this.record('done', context);

    return { sleptMs: ms };
  }

  @JobHandler('diag_sleep_fifo')
  sleepInArrivalOrder(payload: SleepPayload, context: JobContext): Promise<{ sleptMs: number }> {
    return this.sleep(payload, context);
  }

  @JobHandler('diag_fail')
  fail(payload: FailPayload, context: JobContext): Promise<{ attempt: number }> {
    this.record('start', context);
    if (payload?.unrecoverable) {
      throw new UnrecoverableJobError('diagnostic failure without retries');
    }

    if (context.attempt <= (payload?.times ?? Number.MAX_SAFE_INTEGER)) {
      const echo = payload?.echo ? ` (input: ${payload.echo})` : '';
      const noise = ' noise'.repeat(Math.min(payload?.noise ?? 0, 100_000));
      throw new Error(`diagnostic failure on attempt ${context.attempt}${echo}${noise}`);
    }

    this.record('done', context);

    return Promise.resolve({ attempt: context.attempt });
  }

  @JobHandler('diag_fail_fifo')
  failInArrivalOrder(payload: FailPayload, context: JobContext): Promise<{ attempt: number }> {
    return this.fail(payload, context);
  }

  private record(kind: 'start' | 'done', context: JobContext): void {
    if (this.config.diagnosticExecutionLog) {
      // One short line per append: O_APPEND keeps lines from several processes whole.
      appendFileSync(
        this.config.diagnosticExecutionLog,
        `${kind} ${context.id} ${context.attempt}\n`,
      );
    }
  }
}

import { Injectable } from '@nestjs/common';

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
}

const MAX_SLEEP_MS = 10 * 60 * 1000;

@Injectable()
export class DiagnosticJobsHandler {
  @JobHandler('diag_noop')
  noop(): Promise<null> {
    return Promise.resolve(null);
  }

  @JobHandler('diag_sleep')
  async sleep(payload: SleepPayload, context: JobContext): Promise<{ sleptMs: number }> {
    const ms = payload?.ms;
    if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 0 || ms > MAX_SLEEP_MS) {
      throw new UnrecoverableJobError(`payload.ms: expected an integer from 0 to ${MAX_SLEEP_MS}`);
    }

    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, ms);
      context.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(new Error('aborted by worker shutdown'));
      });
    });

    return { sleptMs: ms };
  }

  @JobHandler('diag_fail')
  fail(payload: FailPayload, context: JobContext): Promise<{ attempt: number }> {
    if (payload?.unrecoverable) {
      throw new UnrecoverableJobError('diagnostic failure without retries');
    }

    if (context.attempt <= (payload?.times ?? Number.MAX_SAFE_INTEGER)) {
      throw new Error(`diagnostic failure on attempt ${context.attempt}`);
    }

    return Promise.resolve({ attempt: context.attempt });
  }
}

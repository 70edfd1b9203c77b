import { Logger } from '@nestjs/common';

/** What each per-job line says about the job; never its payload. */
export interface JobLogFields {
  jobType: string;
  jobId: number | undefined;
  attempt: number;
  maxAttempts: number;
}

/**
 * The worker's lines for every job: `debug` when it starts, `log` when it completes. Which
 * levels are on is read once, when the worker starts: a call into a disabled Nest logger still
 * builds its fields and walks the logger's wrappers, which cost about 2% of a worker's CPU.
 * Create it once the application's logger is configured (at bootstrap, not in a constructor).
 */
export class JobLog {
  private readonly starts = Logger.isLevelEnabled('debug');
  private readonly completions = Logger.isLevelEnabled('log');

  constructor(private readonly logger: Logger) {}

  started(fields: JobLogFields): void {
    if (this.starts) {
      this.logger.debug({ message: 'job started', ...fields });
    }
  }

  /** @param startedAt - a `performance.now()` reading taken when the job started */
  completed(fields: JobLogFields, startedAt: number): void {
    if (this.completions) {
      const durationMs = Math.round(performance.now() - startedAt);
      this.logger.log({ message: 'job completed', ...fields, durationMs });
    }
  }
}

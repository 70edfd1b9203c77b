import { BackoffStrategy } from '../../entities/job.entity';

/** How long to wait before a failed attempt is retried. */
export interface BackoffOptions {
  /** `fixed` waits `delayMs` every time; `exponential` waits `delayMs * 2^(attempt - 1)`. */
  strategy: BackoffStrategy;
  /** The base delay in milliseconds. */
  delayMs: number;
  /**
   * From 0 to 1: the share of each delay that is randomised, so that retries of many jobs that
   * failed together do not hit the same dependency at the same instant.
   * @defaultValue 0
   */
  jitter?: number;
}

/** A declared job type: the catalogue that producers, the API and workers share. */
export interface JobTypeDefinition {
  /** Lower-case letters, digits and `_`, starting with a letter; also the BullMQ queue name. */
  name: string;
  /**
   * How many times a job of this type is started at most, unless the job says otherwise.
   * @defaultValue 1
   */
  attempts?: number;
  /** Backoff between attempts, unless the job says otherwise. */
  backoff?: BackoffOptions;
  /**
   * How many jobs of this type one worker process runs at once.
   * @defaultValue the worker's `WORKER_CONCURRENCY`
   */
  concurrency?: number;
  /**
   * Whether jobs of this type may carry a priority. `false` runs them in order of arrival through
   * BullMQ's plain wait list, which is cheaper than its priority path (about 20 us of worker CPU
   * and as much of Redis CPU per job, measured); every job of the type must then have priority 0
   * or none, and any other priority is refused with a `JobValidationError`.
   *
   * A change applies to jobs sent to Redis afterwards. A job already recorded with a priority is
   * then sent without it, and BullMQ runs every job of its wait list before any prioritised job
   * of the same queue, so switch a type while its queue is empty.
   * @defaultValue true
   */
  prioritized?: boolean;
}

/** Whether a job type takes BullMQ's priority path; so does a type that is not declared. */
export function isPrioritized(definition: JobTypeDefinition | undefined): boolean {
  return definition?.prioritized !== false;
}

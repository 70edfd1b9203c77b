import { JobTypeDefinition } from '../queue/job-type.interface';

export interface WorkerModuleOptions {
  redisUrl: string;
  prefix: string;
  /** The whole catalogue, for per-type concurrency. */
  catalogue: JobTypeDefinition[];
  /** The job types this process runs; `undefined` means all of the catalogue. */
  run: string[] | undefined;
  /** Concurrency of types that do not set their own. */
  concurrency: number;
  /** Per type concurrency from configuration; wins over the catalogue's. */
  concurrencyByType: Record<string, number>;
  /** Recorded in the ledger as the worker of each attempt. */
  workerName: string;
  shutdownTimeoutMs: number;
  /** How long a job's lock lives without renewal; a dead worker's job is retried after it. */
  lockDurationMs: number;
  /** How often a worker looks for jobs whose lock has expired. */
  stalledIntervalMs: number;
  /** Hide payload values that a handler's error message repeats (default on). */
  redactErrors: boolean;
}

import { JobTypeDefinition } from '../queue/job-type.interface';

/** The script that starts this application, and the Node.js options it was started with. */
export interface ApplicationEntry {
  script: string;
  execArgv: string[];
}

/** How jobs that stalled before are run apart from the worker process. */
export interface QuarantineOptions {
  /** Forked to run the quarantined jobs: the same application, booted in quarantine mode. */
  entry: ApplicationEntry;
  /** Added to this process's environment for the child, so that it boots in quarantine mode. */
  childEnv: Record<string, string>;
  /** A quarantined job that runs longer has its process killed, and the attempt fails. */
  runTimeoutMs: number;
  /** Child processes at most, each running one job at a time. */
  processes: number;
}

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
  /** Run jobs that stalled before in a child process; `undefined` runs every job in process. */
  quarantine?: QuarantineOptions;
  /**
   * BullMQ's stall limit: how often a job may lose its worker and still run again.
   * @defaultValue 3 with quarantine, BullMQ's 1 without
   */
  maxStalledCount?: number;
  /**
   * Unread entries of a queue's event stream at which its worker stops taking jobs until the
   * ledger has read down to half of it; below BullMQ's stream length. 0 or unset: never.
   */
  ledgerBacklogLimit?: number;
  /** How often the ledger's backlog is looked at; 250 ms by default. */
  ledgerBacklogCheckMs?: number;
  /**
   * This process is a worker's quarantine child: it starts no BullMQ worker and runs the jobs
   * its parent sends over the IPC channel.
   */
  quarantineChild?: boolean;
}

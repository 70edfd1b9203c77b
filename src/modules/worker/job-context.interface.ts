/** What a handler learns about the job it runs, besides the payload. */
export interface JobContext {
  /** The ledger row id. */
  id: number;
  jobType: string;
  /** This attempt's number, from 1. */
  attempt: number;
  /** How many attempts BullMQ will make in all for this dispatch of the job. */
  maxAttempts: number;
  /**
   * Aborted when the worker is shutting down and its grace period is over. Never aborted in
   * quarantine: there the worker ends the child process instead.
   */
  signal: AbortSignal;
}

export type JobHandlerFunction = (payload: unknown, context: JobContext) => unknown;

import { JobEntity, JobStatus, JobTransitionEntity } from '../../entities';
import { TransitionSource } from '../../entities/job-transition.entity';

/** A job as the HTTP API shows it: its ledger row, with the payload parsed and ISO dates. */
export interface JobView {
  id: number;
  jobType: string;
  /** The payload as it was accepted: any JSON value. */
  payload: unknown;
  status: JobStatus;
  /** 0 is the lowest; a larger number runs first. */
  priority: number;
  /** How many times the job was started. */
  attemptCount: number;
  maxAttempts: number;
  errorMessage: string | null;
  createdAt: string;
  updatedAt: string;
  /** When the job may next run: its scheduled time, or the end of a retry's backoff. */
  runAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  /** The worker that ran the latest attempt. */
  worker: string | null;
}

/** One recorded status change of a job. */
export interface TransitionView {
  id: number;
  /** `null` for the transition that records the job's creation. */
  fromStatus: JobStatus | null;
  toStatus: JobStatus;
  attempt: number;
  errorMessage: string | null;
  worker: string | null;
  occurredAt: string;
  /** `enqueue`, `event` (read from the queue's event stream) or `repair`. */
  source: TransitionSource;
  note: string | null;
}

/** The life of a job so far, oldest transition first. */
export interface JobHistoryView {
  jobId: number;
  transitions: TransitionView[];
}

export function toJobView(row: JobEntity): JobView {
  return {
    id: row.id,
    jobType: row.jobType,
    payload: JSON.parse(row.payload) as unknown,
    status: row.status,
    priority: row.priority,
    attemptCount: row.attemptCount,
    maxAttempts: row.maxAttempts,
    errorMessage: row.errorMessage,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    runAt: isoOrNull(row.runAt),
    startedAt: isoOrNull(row.startedAt),
    finishedAt: isoOrNull(row.finishedAt),
    worker: row.worker,
  };
}

export function toTransitionView(transition: JobTransitionEntity): TransitionView {
  return {
    id: transition.id,
    fromStatus: transition.fromStatus,
    toStatus: transition.toStatus,
    attempt: transition.attempt,
    errorMessage: transition.errorMessage,
    worker: transition.worker,
    occurredAt: transition.occurredAt.toISOString(),
    source: transition.source,
    note: transition.note,
  };
}

export function toJobHistoryView(
  jobId: number,
  transitions: JobTransitionEntity[],
): JobHistoryView {
  return { jobId, transitions: transitions.map(toTransitionView) };
}

function isoOrNull(date: Date | null): string | null {
  return date ? date.toISOString() : null;
}

/** Our priorities run from 0 (lowest) to this; BullMQ's own scale tops out one above it. */
export const MAX_PRIORITY = 2_097_150;
export const MAX_ATTEMPTS = 100;
export const MAX_DELAY_MS = 366 * 24 * 60 * 60 * 1000;
export const MAX_BACKOFF_DELAY_MS = 24 * 60 * 60 * 1000;
export const MAX_BATCH_SIZE = 1000;
export const JOB_TYPE_PATTERN = /^[a-z][a-z0-9_]{0,99}$/;

export const QUEUE_MODULE_OPTIONS = Symbol('QUEUE_MODULE_OPTIONS');

/** Entries BullMQ keeps of each queue's event stream unless configured otherwise. */
export const DEFAULT_EVENTS_MAX_LEN = 100_000;

/** Share of `eventsMaxLen` unread at which producers are refused by default (workers: 0.5). */
export const PRODUCER_BACKLOG_SHARE = 0.8;

/** A producer's lease on room under its limit lapses unless renewed within this time. */
export const PRODUCER_LEASE_TTL_MS = 10_000;

/** A producer in use renews its leases at least this often, returning entries now in Redis. */
export const PRODUCER_LEASE_RENEW_MS = 250;

/** Share of the producers' limit a process asks for beyond its callers' needs, per renewal. */
export const PRODUCER_LEASE_CHUNK_SHARE = 1 / 16;

/** Stream entries an accepted job adds before any worker takes it: `added` and `waiting`. */
export const ENTRIES_PER_ENQUEUED_JOB = 2;

/** The Redis key of a queue's event stream, as BullMQ names it. */
export function eventsStreamKey(prefix: string, queueName: string): string {
  return `${prefix}:${queueName}:events`;
}

/**
 * How many entries of a queue's event stream the ledger has read (its `entries-added` count at
 * the ledger's position). Workers compare it with the stream's own count to see how far the
 * ledger is behind, and stop taking jobs before BullMQ's trimming could outrun it.
 */
export function ledgerProgressKey(prefix: string, queueName: string): string {
  return `${prefix}:${queueName}:ledger-read`;
}

/** BullMQ refuses all-digit job ids, so the ledger row id gets a prefix. */
const BULL_JOB_ID_PREFIX = 'job-';

export function toBullJobId(rowId: number): string {
  return `${BULL_JOB_ID_PREFIX}${rowId}`;
}

export function fromBullJobId(bullJobId: string): number | undefined {
  if (!bullJobId.startsWith(BULL_JOB_ID_PREFIX)) {
    return undefined;
  }

  const rowId = Number(bullJobId.slice(BULL_JOB_ID_PREFIX.length));

  return Number.isSafeInteger(rowId) && rowId > 0 ? rowId : undefined;
}

/** Never part of a job type (see `JOB_TYPE_PATTERN`). */
const STARTS_BEFORE_SEPARATOR = '#';

/**
 * BullMQ's name for a job: its type and, for a job sent again after Redis lost it, the starts
 * the ledger had counted (`email_dispatch#2`). BullMQ counts a job's attempts from zero each
 * time it is added; from the name, workers number the attempts on from the ledger's count.
 */
export function toBullJobName(jobType: string, startsBefore: number): string {
  return startsBefore > 0 ? `${jobType}${STARTS_BEFORE_SEPARATOR}${startsBefore}` : jobType;
}

/** The starts a BullMQ job name carries (0 for a first send, or a name the ledger did not make). */
export function startsBeforeOf(bullJobName: string): number {
  const separator = bullJobName.indexOf(STARTS_BEFORE_SEPARATOR);
  if (separator < 0) {
    return 0;
  }

  const starts = Number(bullJobName.slice(separator + 1));

  return Number.isSafeInteger(starts) && starts > 0 ? starts : 0;
}

/**
 * BullMQ runs a lower number first and puts priority 0 ahead of every prioritised job, so the
 * mapping reverses our scale and never yields 0.
 */
export function toBullPriority(priority: number): number {
  return MAX_PRIORITY + 1 - priority;
}

/**
 * The job-hash field where workers keep each failed attempt's error, by attempt number (JSON),
 * for the ledger: BullMQ's own `failedReason` holds only the latest.
 */
export const ATTEMPT_ERRORS_FIELD = 'lqe';

import { isTerminal, JobStatus } from '../../entities/job-status';
import { TransitionSource } from '../../entities/job-transition.entity';
import { QueueEvent } from './queue-event';
import { compareStreamIds, streamIdTime } from './stream-id';

/** The columns of a ledger row that the projector maintains. */
export interface LedgerRowState {
  id: number;
  status: JobStatus;
  attemptCount: number;
  errorMessage: string | null;
  worker: string | null;
  runAt: Date | null;
  dispatchedAt: Date | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  lastEventId: string | null;
}

/** What the event itself does not say, read from the job's hash in Redis. */
export interface JobFacts {
  processedBy?: string;
  /** When the job was added to Redis (BullMQ's `timestamp`, the producer's clock). */
  addedAt?: Date;
  failedReason?: string;
  /** Each failed attempt's error by attempt number, as the worker kept it. */
  attemptErrors?: Record<string, string>;
}

export interface TransitionRecord {
  jobId: number;
  fromStatus: JobStatus | null;
  toStatus: JobStatus;
  attempt: number;
  errorMessage: string | null;
  worker: string | null;
  occurredAt: Date;
  source: TransitionSource;
  eventId: string | null;
  note: string | null;
}

export interface EventOutcome {
  /** Whether the row must be written. */
  changed: boolean;
  transition?: TransitionRecord;
}

export const STALLED_MESSAGE =
  'stalled: the worker stopped renewing the job lock (process killed or event loop blocked)';

const UNCHANGED: EventOutcome = { changed: false };

/**
 * Whether an event can change a ledger row. `added` and a first `waiting` only say that the job
 * reached Redis: recording that for every job cost an extra row version per job, about half of
 * the ledger's database time, so `dispatched_at` is filled from the job's own timestamp when the
 * row is next written, not from them. The batch read script (`event-stream.reader.ts`) applies
 * the same rule in Redis and keeps `stalled` too, for the look-ahead of a stalled job's retry.
 */
export function canChangeRow(event: QueueEvent): boolean {
  switch (event.event) {
    case 'waiting':
      return event.fields.prev === 'active';
    case 'delayed':
    case 'active':
    case 'completed':
    case 'failed':
      return true;
    default:
      return false;
  }
}

/**
 * Applies one queue event to a row, in place. Events the row has already seen are ignored, and
 * a terminal row never changes: replaying a stream is therefore harmless.
 *
 * @param followedByStall - for `waiting` after `active`: whether the next event of the job is
 *   `stalled`, which tells a lost worker from a retry without backoff.
 */
export function applyEvent(
  row: LedgerRowState,
  event: QueueEvent,
  facts: JobFacts,
  followedByStall = false,
): EventOutcome {
  if (row.lastEventId !== null && compareStreamIds(event.id, row.lastEventId) <= 0) {
    return UNCHANGED;
  }

  const at = streamIdTime(event.id);
  const outcome = isTerminal(row.status)
    ? UNCHANGED
    : dispatchEvent(row, event, facts, at, followedByStall);
  if (outcome.changed) {
    row.lastEventId = event.id;
  }

  return outcome;
}

function dispatchEvent(
  row: LedgerRowState,
  event: QueueEvent,
  facts: JobFacts,
  at: Date,
  followedByStall: boolean,
): EventOutcome {
  switch (event.event) {
    case 'waiting':
      return event.fields.prev === 'active'
        ? returnToPending(
            row,
            event,
            at,
            followedByStall ? stallReason() : retryReason(facts, row.attemptCount),
          )
        : UNCHANGED;
    case 'delayed':
      return onDelayed(row, event, facts, at);
    case 'active':
      return onActive(row, event, facts, at);
    case 'completed':
      return finish(row, event, at, 'completed', null);
    case 'failed':
      return finish(
        row,
        event,
        at,
        'failed',
        event.fields.failedReason ?? facts.failedReason ?? null,
      );
    default:
      return UNCHANGED;
  }
}

function onDelayed(
  row: LedgerRowState,
  event: QueueEvent,
  facts: JobFacts,
  at: Date,
): EventOutcome {
  const until = Number(event.fields.delay);
  const runAt = Number.isFinite(until) && until > 0 ? new Date(until) : row.runAt;

  if (row.status === 'processing') {
    row.runAt = runAt;

    return returnToPending(row, event, at, retryReason(facts, row.attemptCount));
  }

  row.dispatchedAt ??= facts.addedAt ?? at;
  row.runAt = runAt;

  return { changed: true };
}

function onActive(row: LedgerRowState, event: QueueEvent, facts: JobFacts, at: Date): EventOutcome {
  if (row.status !== 'pending') {
    return UNCHANGED;
  }

  row.dispatchedAt ??= facts.addedAt ?? at;
  row.attemptCount += 1;
  row.startedAt = at;
  row.finishedAt = null;
  row.worker = facts.processedBy ?? null;

  return {
    changed: true,
    transition: transition(row, event, at, 'pending', 'processing', null, null),
  };
}

interface PendingReason {
  errorMessage: string | null;
  note: string;
}

function returnToPending(
  row: LedgerRowState,
  event: QueueEvent,
  at: Date,
  reason: PendingReason,
): EventOutcome {
  if (row.status !== 'processing') {
    return UNCHANGED;
  }

  row.status = 'pending';
  row.errorMessage = reason.errorMessage;

  return {
    changed: true,
    transition: transition(
      row,
      event,
      at,
      'processing',
      'pending',
      reason.errorMessage,
      reason.note,
    ),
  };
}

function finish(
  row: LedgerRowState,
  event: QueueEvent,
  at: Date,
  to: 'completed' | 'failed',
  errorMessage: string | null,
): EventOutcome {
  const from = row.status;
  row.status = to;
  row.dispatchedAt ??= at;
  row.finishedAt = at;
  row.errorMessage = errorMessage;

  const note = from === 'pending' ? 'finished without a recorded start' : null;

  return { changed: true, transition: transition(row, event, at, from, to, errorMessage, note) };
}

function transition(
  row: LedgerRowState,
  event: QueueEvent,
  at: Date,
  from: JobStatus,
  to: JobStatus,
  errorMessage: string | null,
  note: string | null,
): TransitionRecord {
  row.status = to;

  return {
    jobId: row.id,
    fromStatus: from,
    toStatus: to,
    attempt: row.attemptCount,
    errorMessage,
    worker: row.worker,
    occurredAt: at,
    source: 'event',
    eventId: event.id,
    note,
  };
}

/**
 * The failed attempt's own error where the worker kept it; otherwise BullMQ's latest failure
 * reason, which is this attempt's unless the job failed again before the ledger read it.
 */
function retryReason(facts: JobFacts, attempt: number): PendingReason {
  const kept: unknown = facts.attemptErrors?.[String(attempt)];
  const errorMessage = typeof kept === 'string' ? kept : (facts.failedReason ?? null);

  return { errorMessage, note: 'attempt failed; will retry' };
}

function stallReason(): PendingReason {
  return { errorMessage: STALLED_MESSAGE, note: 'stalled; moved back to wait' };
}

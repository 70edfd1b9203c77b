import Redis from 'ioredis';

import { JobStatus } from '../../entities/job-status';
import { startsBeforeOf, toBullJobId } from '../queue/queue.constants';

/** A job as Redis holds it, read for repairs. */
export interface RedisJobState {
  rowId: number;
  /** The ledger status the job's Redis state corresponds to; `missing` if Redis lacks the job. */
  status: JobStatus | 'missing';
  /** Over every send of the job: those counted before it was sent again, and BullMQ's own. */
  attemptsStarted: number;
  failedReason: string | null;
  processedBy: string | null;
  processedOn: Date | null;
  finishedOn: Date | null;
}

export interface RedisJobSnapshot {
  /** The stream position the states are consistent with. */
  streamId: string;
  jobs: Map<number, RedisJobState>;
}

const FIELDS = [
  'ats',
  'processedOn',
  'finishedOn',
  'failedReason',
  'pb',
  'timestamp',
  'name',
] as const;

/**
 * Reads the states of some jobs and the last id of their queue's event stream in one MULTI, so
 * the snapshot is exactly "the state after event `streamId`".
 */
export async function readJobSnapshot(
  redis: Redis,
  queueKeyPrefix: string,
  eventsKey: string,
  rowIds: number[],
): Promise<RedisJobSnapshot> {
  const multi = redis.multi();
  multi.xrevrange(eventsKey, '+', '-', 'COUNT', 1);
  for (const rowId of rowIds) {
    const jobId = toBullJobId(rowId);
    multi.hmget(`${queueKeyPrefix}${jobId}`, ...FIELDS);
    multi.zscore(`${queueKeyPrefix}completed`, jobId);
    multi.zscore(`${queueKeyPrefix}failed`, jobId);
    multi.call('LPOS', `${queueKeyPrefix}active`, jobId);
  }

  const results = ((await multi.exec()) ?? []).map(([error, value]) => {
    if (error) {
      throw error;
    }

    return value;
  });

  const [lastEntry] = results[0] as Array<[string, string[]]>;
  const jobs = new Map<number, RedisJobState>();
  rowIds.forEach((rowId, index) => {
    const [hash, completed, failed, activeAt] = results.slice(1 + index * 4, 5 + index * 4);
    jobs.set(rowId, toState(rowId, hash as Array<string | null>, completed, failed, activeAt));
  });

  return { streamId: lastEntry?.[0] ?? '0-0', jobs };
}

function toState(
  rowId: number,
  hash: Array<string | null>,
  completed: unknown,
  failed: unknown,
  activeAt: unknown,
): RedisJobState {
  const [ats, processedOn, finishedOn, failedReason, processedBy, timestamp, name] = hash;
  const state: RedisJobState = {
    rowId,
    status: 'pending',
    attemptsStarted: startsBeforeOf(name ?? '') + Number(ats ?? 0),
    failedReason: failedReason ?? null,
    processedBy: processedBy ?? null,
    processedOn: processedOn ? new Date(Number(processedOn)) : null,
    finishedOn: finishedOn ? new Date(Number(finishedOn)) : null,
  };

  if (timestamp === null) {
    state.status = 'missing';
  } else if (completed !== null) {
    state.status = 'completed';
  } else if (failed !== null) {
    state.status = 'failed';
  } else if (activeAt !== null) {
    state.status = 'processing';
  }

  return state;
}

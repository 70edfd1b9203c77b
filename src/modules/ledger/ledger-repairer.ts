import { Logger } from '@nestjs/common';
import Redis from 'ioredis';
import { DataSource } from 'typeorm';

import { JobStatus } from '../../entities/job-status';
import { toBullJobId } from '../queue/queue.constants';
import { QueueRegistry } from '../queue/queue-registry.service';
import { FinishedJobsCleaner } from './finished-jobs.cleaner';
import { LedgerBatchWriter } from './ledger-batch.writer';
import { REPAIR_CHUNK_SIZE } from './ledger.constants';
import { readJobSnapshot, RedisJobState } from './redis-job-state';
import { compareStreamIds } from './stream-id';
import { LedgerRowState, TransitionRecord } from './transition-rules';

/**
 * Brings non-terminal ledger rows to their jobs' real state in Redis when the events that
 * described the change can no longer be read. Each row gets the stream id its snapshot is
 * consistent with, so replayed older events leave it alone.
 */
export class LedgerRepairer {
  private readonly logger = new Logger(LedgerRepairer.name);

  constructor(
    private readonly dataSource: DataSource,
    private readonly redis: Redis,
    private readonly registry: QueueRegistry,
    private readonly writer: LedgerBatchWriter,
    private readonly cleaner: FinishedJobsCleaner,
  ) {}

  /** Repairs every pending or processing row of one queue. Returns how many rows changed. */
  async repairQueue(queue: string, evidence: string): Promise<number> {
    let repaired = 0;
    const chunks = this.writer.unfinishedRowIds(this.dataSource.manager, queue, REPAIR_CHUNK_SIZE);
    for await (const ids of chunks) {
      repaired += await this.repairChunk(queue, ids, evidence);
    }

    this.logger.warn({
      message: 'repaired ledger rows from Redis state',
      queue,
      repaired,
      evidence,
    });

    return repaired;
  }

  private async repairChunk(queue: string, ids: number[], evidence: string): Promise<number> {
    const snapshot = await readJobSnapshot(
      this.redis,
      `${this.registry.options.prefix}:${queue}:`,
      this.registry.eventsKey(queue),
      ids,
    );

    const transitions = await this.dataSource.transaction(async (manager) => {
      const rows = await this.writer.loadRows(manager, ids);
      const changed: LedgerRowState[] = [];
      const transitions: TransitionRecord[] = [];

      for (const row of rows.values()) {
        const state = snapshot.jobs.get(row.id);
        if (
          !state ||
          state.status === 'missing' ||
          row.status === 'completed' ||
          row.status === 'failed'
        ) {
          continue;
        }

        const transition = reconcileRow(row, state, snapshot.streamId, evidence);
        changed.push(row);
        if (transition) {
          transitions.push(transition);
        }
      }

      await this.writer.updateRows(manager, changed);
      await this.writer.insertTransitions(manager, transitions);

      return transitions;
    });

    // As after every batch: a job leaves Redis only once its end is committed.
    const finished = transitions
      .filter(
        (transition) => transition.toStatus === 'completed' || transition.toStatus === 'failed',
      )
      .map((transition) => toBullJobId(transition.jobId));
    await this.cleaner.remove(`${this.registry.options.prefix}:${queue}:`, finished);

    return transitions.length;
  }
}

/** Sets a row to what Redis says, in place; returns the transition if the status or count moved. */
export function reconcileRow(
  row: LedgerRowState,
  state: RedisJobState,
  streamId: string,
  evidence: string,
): TransitionRecord | undefined {
  const status = state.status as JobStatus;
  const attempts = Math.max(row.attemptCount, state.attemptsStarted);
  const from = row.status;
  const moved = from !== status || attempts !== row.attemptCount;

  if (row.lastEventId === null || compareStreamIds(streamId, row.lastEventId) > 0) {
    row.lastEventId = streamId;
  }
  row.dispatchedAt ??= state.processedOn ?? new Date();
  if (!moved) {
    return undefined;
  }

  row.status = status;
  row.attemptCount = attempts;
  row.worker = state.processedBy ?? row.worker;
  row.startedAt = state.processedOn ?? row.startedAt;
  row.finishedAt = status === 'completed' || status === 'failed' ? state.finishedOn : null;
  row.errorMessage = status === 'completed' ? null : (state.failedReason ?? row.errorMessage);

  return {
    jobId: row.id,
    fromStatus: from,
    toStatus: status,
    attempt: attempts,
    errorMessage: row.errorMessage,
    worker: row.worker,
    occurredAt: state.finishedOn ?? state.processedOn ?? new Date(),
    source: 'repair',
    eventId: streamId,
    note: `repaired from Redis (${evidence}): job ${state.status}, ${state.attemptsStarted} start(s)`.slice(
      0,
      255,
    ),
  };
}

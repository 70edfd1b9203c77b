import { Logger } from '@nestjs/common';
import Redis from 'ioredis';
import { DataSource, In } from 'typeorm';

import { JobEntity } from '../../entities';
import { isTerminal } from '../../entities/job-status';
import { JobDispatcher } from '../queue/job-dispatcher.service';
import { fromBullJobId, toBullJobId } from '../queue/queue.constants';
import { QueueRegistry } from '../queue/queue-registry.service';
import { StreamPosition } from './event-stream.reader';
import { FinishedJobsCleaner } from './finished-jobs.cleaner';
import { LedgerBatchWriter } from './ledger-batch.writer';
import { REPAIR_CHUNK_SIZE } from './ledger.constants';
import { reconcileRow } from './ledger-repairer';
import { RawStreamEntry } from './queue-event';
import { readJobSnapshot, RedisJobState } from './redis-job-state';
import { LedgerRowState, TransitionRecord } from './transition-rules';

/** What one reconciliation pass found and did. */
export interface ReconcileReport {
  reason: string;
  /** Non-terminal rows compared with Redis. */
  checked: number;
  /** Rows whose job Redis did not hold, sent again (and accepted by Redis). */
  resent: number;
  /** Rows brought to their job's real state in Redis. */
  repaired: number;
  /** Rows left alone because the projector still has unread events about them. */
  inFlight: number;
  durationMs: number;
}

/** More unread events than this and a pass skips the queue: the projector is far behind. */
const MAX_UNREAD_EVENTS = 20_000;

export const LOST_FROM_REDIS_MESSAGE = 'the job was lost from Redis while it was running';

interface ChunkResult {
  checked: number;
  resent: number;
  repaired: number;
  inFlight: number;
}

/**
 * Compares the ledger's unfinished rows with the jobs in Redis and repairs both directions: a
 * job Redis lost is sent again (keeping priority, remaining attempts and remaining delay), and a
 * row whose job moved on unseen is brought to the job's state. Runs inside the active projector,
 * so it is never concurrent with another writer of job statuses.
 */
export class LedgerReconciler {
  private readonly logger = new Logger(LedgerReconciler.name);

  constructor(
    private readonly dataSource: DataSource,
    private readonly redis: Redis,
    private readonly registry: QueueRegistry,
    private readonly writer: LedgerBatchWriter,
    private readonly cleaner: FinishedJobsCleaner,
    private readonly dispatcher: JobDispatcher,
  ) {}

  /**
   * Reconciles every queue at the given positions. Rows younger than `graceMs` are left to the
   * process that enqueued them.
   */
  async reconcile(
    positions: StreamPosition[],
    reason: string,
    graceMs: number,
  ): Promise<ReconcileReport> {
    const started = performance.now();
    const totals: ChunkResult = { checked: 0, resent: 0, repaired: 0, inFlight: 0 };

    for (const position of positions) {
      const chunks = this.writer.unfinishedRowIds(
        this.dataSource.manager,
        position.queue,
        REPAIR_CHUNK_SIZE,
        graceMs,
      );
      const unread = new UnreadEvents(this.redis, position);
      for await (const ids of chunks) {
        const result = await this.reconcileChunk(position, ids, unread, reason);
        totals.checked += result.checked;
        totals.resent += result.resent;
        totals.repaired += result.repaired;
        totals.inFlight += result.inFlight;
      }
    }

    const report = { reason, ...totals, durationMs: Math.round(performance.now() - started) };
    const level = report.resent + report.repaired > 0 ? 'warn' : 'debug';
    this.logger[level]({ message: 'reconciled the ledger with Redis', ...report });

    return report;
  }

  private async reconcileChunk(
    position: StreamPosition,
    ids: number[],
    unread: UnreadEvents,
    reason: string,
  ): Promise<ChunkResult> {
    // Redis first, the rows second: a row still unfinished after the Redis read was not finished
    // (and removed from Redis) by the projector before it, so a missing job is truly lost.
    const keyPrefix = `${this.registry.options.prefix}:${position.queue}:`;
    const snapshot = await readJobSnapshot(this.redis, keyPrefix, position.key, ids);
    const inFlight = await unread.jobIdsUpTo(snapshot.streamId);

    const outcome = await this.dataSource.transaction(async (manager) => {
      const rows = await this.writer.loadRows(manager, ids);
      const decided = decide(
        [...rows.values()],
        snapshot.jobs,
        inFlight,
        snapshot.streamId,
        reason,
      );
      await this.writer.updateRows(manager, decided.changed);
      await this.writer.insertTransitions(manager, decided.transitions);

      return decided;
    });

    await this.cleaner.remove(keyPrefix, outcome.finished.map(toBullJobId));
    const resent = await this.resend(outcome.resend, outcome.refunded);

    return {
      checked: ids.length,
      resent,
      repaired: outcome.repaired,
      inFlight: outcome.inFlightCount,
    };
  }

  /** Returns how many Redis accepted; the others are tried again at the next pass. */
  private async resend(ids: number[], refunded: Set<number>): Promise<number> {
    if (ids.length === 0) {
      return 0;
    }

    const rows = await this.dataSource.getRepository(JobEntity).findBy({ id: In(ids) });
    const sendable = rows.filter((row) => !isTerminal(row.status));

    return this.dispatcher.dispatch(sendable, refunded);
  }
}

/**
 * Row ids that events after the projector's cursor still speak of, for one queue in one pass.
 * The cursor stands still while the reconciler runs (both run in the projector's loop), so each
 * chunk reads only the entries added since the previous one: reading them all again for every
 * chunk cost a pass over 200,000 unfinished rows millions of decoded entries.
 */
class UnreadEvents {
  private readonly ids = new Set<number>();
  private readAfter: string;
  private entriesRead = 0;

  constructor(
    private readonly redis: Redis,
    private readonly position: StreamPosition,
  ) {
    this.readAfter = position.cursor;
  }

  /** The ids up to `untilId`, or 'all' once the projector is too far behind to tell. */
  async jobIdsUpTo(untilId: string): Promise<Set<number> | 'all'> {
    if (this.entriesRead >= MAX_UNREAD_EVENTS) {
      return 'all';
    }

    const entries = (await this.redis.xrange(
      this.position.key,
      `(${this.readAfter}`,
      untilId,
      'COUNT',
      MAX_UNREAD_EVENTS - this.entriesRead,
    )) as RawStreamEntry[];
    this.entriesRead += entries.length;
    if (this.entriesRead >= MAX_UNREAD_EVENTS) {
      return 'all';
    }

    for (const [entryId, fields] of entries) {
      const jobIdAt = fields.indexOf('jobId');
      const rowId = jobIdAt >= 0 ? fromBullJobId(fields[jobIdAt + 1]) : undefined;
      if (rowId !== undefined) {
        this.ids.add(rowId);
      }
      this.readAfter = entryId;
    }

    return this.ids;
  }
}

interface Decision {
  changed: LedgerRowState[];
  transitions: TransitionRecord[];
  resend: number[];
  /** Rows lost mid-attempt: that attempt is not counted against the remaining attempts. */
  refunded: Set<number>;
  finished: number[];
  repaired: number;
  inFlightCount: number;
}

function decide(
  rows: LedgerRowState[],
  jobs: Map<number, RedisJobState>,
  inFlight: Set<number> | 'all',
  streamId: string,
  reason: string,
): Decision {
  const decision: Decision = {
    changed: [],
    transitions: [],
    resend: [],
    refunded: new Set(),
    finished: [],
    repaired: 0,
    inFlightCount: 0,
  };

  for (const row of rows) {
    const job = jobs.get(row.id);
    if (!job || isTerminal(row.status)) {
      continue;
    }

    if (job.status === 'missing') {
      markLost(row, reason, decision);
    } else if (inFlight === 'all' || inFlight.has(row.id)) {
      decision.inFlightCount += 1;
    } else {
      bringToJobState(row, job, streamId, reason, decision);
    }
  }

  return decision;
}

function markLost(row: LedgerRowState, reason: string, decision: Decision): void {
  decision.resend.push(row.id);
  if (row.status !== 'processing') {
    return;
  }

  row.status = 'pending';
  row.errorMessage = LOST_FROM_REDIS_MESSAGE;
  row.dispatchedAt = null;
  decision.refunded.add(row.id);
  decision.changed.push(row);
  decision.transitions.push({
    jobId: row.id,
    fromStatus: 'processing',
    toStatus: 'pending',
    attempt: row.attemptCount,
    errorMessage: LOST_FROM_REDIS_MESSAGE,
    worker: row.worker,
    occurredAt: new Date(),
    source: 'repair',
    eventId: null,
    note: `job missing from Redis (${reason}); sent again`.slice(0, 255),
  });
}

function bringToJobState(
  row: LedgerRowState,
  job: RedisJobState,
  streamId: string,
  reason: string,
  decision: Decision,
): void {
  const before = `${row.status}/${row.attemptCount}`;
  const transition = reconcileRow(row, job, streamId, `reconciliation: ${reason}`);
  if (!transition && before === `${row.status}/${row.attemptCount}`) {
    return;
  }

  decision.changed.push(row);
  if (transition) {
    decision.transitions.push(transition);
    decision.repaired += 1;
    if (isTerminal(transition.toStatus)) {
      decision.finished.push(row.id);
    }
  }
}

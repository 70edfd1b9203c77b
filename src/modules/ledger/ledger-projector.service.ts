import { randomUUID } from 'node:crypto';

import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
} from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import Redis from 'ioredis';
import { Pool } from 'mysql2/promise';
import { DataSource, EntityManager, QueryRunner } from 'typeorm';

import { isTerminal } from '../../entities/job-status';
import { createMultiStatementPool, withPooledConnection } from '../database/multi-statement';
import { JobDispatcher } from '../queue/job-dispatcher.service';
import { fromBullJobId, ledgerProgressKey, toBullJobId } from '../queue/queue.constants';
import { QueueRegistry } from '../queue/queue-registry.service';
import { createRedisClient } from '../queue/redis-connection';
import { EventStreamReader, StreamPosition, StreamRead } from './event-stream.reader';
import { FinishedJobsCleaner } from './finished-jobs.cleaner';
import { JobFactsReader } from './job-facts.reader';
import { LedgerBatchWriter } from './ledger-batch.writer';
import {
  epochMarkerKey,
  LEADERSHIP_RETRY_MS,
  LEDGER_MODULE_OPTIONS,
  PROGRESS_PUBLISH_MS,
  projectorLockName,
  RECONCILE_REQUEST_POLL_MS,
  REDIS_DATA_LOSS_NOTE,
} from './ledger.constants';
import { LedgerModuleOptions } from './ledger-module-options.interface';
import { LedgerDispatcher } from './ledger-dispatcher.service';
import { LedgerReconciler, ReconcileReport } from './ledger-reconciler';
import { LedgerRepairer } from './ledger-repairer';
import { QueueEvent } from './queue-event';
import { STREAM_START } from './stream-id';
import {
  applyEvent,
  canChangeRow,
  JobFacts,
  LedgerRowState,
  TransitionRecord,
} from './transition-rules';

/** Counters for operators and the benchmark. */
export interface ProjectorStats {
  batches: number;
  eventsRead: number;
  transitionsRecorded: number;
  repairs: number;
  eventsWithoutRow: number;
  reconciliations: number;
}

interface BatchResult {
  changed: LedgerRowState[];
  transitions: TransitionRecord[];
  finishedByQueue: Map<string, string[]>;
}

/**
 * Mirrors every queue's BullMQ event stream into the ledger. Each batch of transitions is
 * written with the new stream cursors in one transaction, so a crash replays from the last
 * committed cursor and nothing is recorded twice. One projector is active at a time, elected by
 * a MySQL named lock.
 */
@Injectable()
export class LedgerProjector implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(LedgerProjector.name);
  private readonly redis: Redis;
  private readonly blocking: Redis;
  private readonly reader: EventStreamReader;
  private readonly writer = new LedgerBatchWriter();
  private readonly cleaner: FinishedJobsCleaner;
  private readonly factsReader: JobFactsReader;
  private readonly repairer: LedgerRepairer;
  private readonly reconciler: LedgerReconciler;
  private reconcileDueAt = 0;
  private requestsCheckedAt = 0;
  /** Where the projector has read to; ahead of `saved` while cursors wait to be saved. */
  private positions: StreamPosition[] | undefined;
  /** The positions as the database holds them, by stream key, as of this projector's last look. */
  private saved = new Map<string, StreamPosition>();
  /** Since when read positions have been ahead of the saved ones, and by how many entries. */
  private unsaved: { since: number; entries: number } | undefined;
  private leader: QueryRunner | undefined;
  private batchConnections: Pool | undefined;
  private leaderCheckedAt = 0;
  private progressPublishedAt = 0;
  private readonly lockName: string;
  private running = false;
  private loop: Promise<void> | undefined;

  readonly stats: ProjectorStats = {
    batches: 0,
    eventsRead: 0,
    transitionsRecorded: 0,
    repairs: 0,
    eventsWithoutRow: 0,
    reconciliations: 0,
  };

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly registry: QueueRegistry,
    @Inject(LEDGER_MODULE_OPTIONS) private readonly options: LedgerModuleOptions,
    dispatcher: JobDispatcher,
    private readonly ledgerDispatcher: LedgerDispatcher,
  ) {
    const url = registry.options.redisUrl;
    this.redis = createRedisClient(url);
    this.blocking = createRedisClient(url, true);
    this.lockName = projectorLockName(String(dataSource.options.database), registry.options.prefix);
    this.reader = new EventStreamReader(this.redis, this.blocking);
    this.cleaner = new FinishedJobsCleaner(this.redis);
    this.factsReader = new JobFactsReader(this.redis);
    this.repairer = new LedgerRepairer(dataSource, this.redis, registry, this.writer, this.cleaner);
    this.reconciler = new LedgerReconciler(
      dataSource,
      this.redis,
      registry,
      this.writer,
      this.cleaner,
      dispatcher,
    );
  }

  /** Events read by batches that changed no row, whose cursors wait to be saved. */
  get eventsAwaitingCursorSave(): number {
    return this.unsaved?.entries ?? 0;
  }

  onApplicationBootstrap(): void {
    this.running = true;
    this.loop = this.run();
  }

  async onApplicationShutdown(): Promise<void> {
    this.running = false;
    // Ends a pending blocking read at once instead of waiting out its timeout.
    this.blocking.disconnect();
    await this.loop;
    await this.saveDeferredCursors().catch((error: unknown) =>
      this.logger.warn({
        message: 'could not save the cursors at shutdown; their no-op events will be read again',
        error: error instanceof Error ? error.message : String(error),
      }),
    );
    await this.releaseLeadership();
    await this.batchConnections?.end();
    this.redis.disconnect();
  }

  /**
   * Reads and records one batch. Returns how many events it read (0 when the streams had
   * nothing new). Exposed for tests and operators; the loop calls it continuously.
   */
  async projectOnce(): Promise<number> {
    this.positions ??= await this.loadPositions();
    const reads = await this.reader.read(this.positions, this.options.batchSize);

    for (const read of reads) {
      if ((await this.repairIfEventsWereLost(read)) === 'reset') {
        // The queue's stream began anew: read it from its start on the next step.
        this.forgetPositions();

        return 1;
      }
    }

    const eventCount = reads.reduce((sum, read) => sum + read.entriesRead, 0);
    if (eventCount > 0) {
      await this.applyBatch(reads, eventCount);
    }
    if (this.cursorSaveDueInMs() <= 0) {
      await this.saveDeferredCursors();
    }
    await this.publishProgressWhenDue();

    return eventCount;
  }

  /**
   * Tells the workers how far the ledger has read each stream, at most every
   * `PROGRESS_PUBLISH_MS`: a worker stops taking jobs while the ledger is too far behind, so that
   * BullMQ's trimming of the stream cannot drop transitions the ledger has not read.
   */
  private async publishProgressWhenDue(): Promise<void> {
    if (!this.positions || Date.now() - this.progressPublishedAt < PROGRESS_PUBLISH_MS) {
      return;
    }

    this.progressPublishedAt = Date.now();
    const pipeline = this.redis.pipeline();
    for (const position of this.positions) {
      pipeline.set(
        ledgerProgressKey(this.registry.options.prefix, position.queue),
        position.entriesRead,
      );
    }
    await pipeline.exec();
  }

  /**
   * Asks the active projector, in this process or another, to reconcile now, and waits for its
   * report. Used by `npm run reconcile`.
   */
  async requestReconcile(timeoutMs: number): Promise<ReconcileReport> {
    const id = randomUUID();
    const replyKey = `${this.reconcileRequestsKey}:${id}`;
    const waiter = createRedisClient(this.registry.options.redisUrl, true);

    try {
      await this.redis.rpush(this.reconcileRequestsKey, id);
      const reply = await waiter.blpop(replyKey, Math.ceil(timeoutMs / 1000));
      if (!reply) {
        throw new Error(`no active ledger projector answered within ${timeoutMs} ms`);
      }

      return JSON.parse(reply[1]) as ReconcileReport;
    } finally {
      waiter.disconnect();
    }
  }

  private get reconcileRequestsKey(): string {
    return `${this.registry.options.prefix}:ledger:reconcile-requests`;
  }

  /** Serves operators' requests, and reconciles every `reconcileIntervalMs` on its own. */
  private async reconcileWhenDue(): Promise<void> {
    const requestId = await this.takeReconcileRequest();
    const due = Date.now() >= this.reconcileDueAt;
    if (!requestId && !due) {
      return;
    }

    this.positions ??= await this.loadPositions();
    const reason = requestId ? 'requested by an operator' : 'periodic check';
    const report = await this.reconciler.reconcile(
      this.positions,
      reason,
      this.registry.options.dispatchGraceMs,
    );
    this.reconcileDueAt = Date.now() + this.options.reconcileIntervalMs;
    this.stats.reconciliations += 1;

    if (requestId) {
      const replyKey = `${this.reconcileRequestsKey}:${requestId}`;
      await this.redis.multi().rpush(replyKey, JSON.stringify(report)).expire(replyKey, 300).exec();
    }
  }

  /**
   * An operator's pending request, looked for at most every `RECONCILE_REQUEST_POLL_MS`: asking
   * Redis on every turn of the loop was one more round trip per batch.
   */
  private async takeReconcileRequest(): Promise<string | null> {
    if (Date.now() - this.requestsCheckedAt < RECONCILE_REQUEST_POLL_MS) {
      return null;
    }

    this.requestsCheckedAt = Date.now();

    return this.redis.lpop(this.reconcileRequestsKey);
  }

  private async run(): Promise<void> {
    let failures = 0;

    while (this.running) {
      try {
        if (!(await this.ensureLeadership())) {
          await sleep(LEADERSHIP_RETRY_MS);
          continue;
        }

        const batchStartedAt = Date.now();
        const read = await this.projectOnce();
        await this.reconcileWhenDue();
        await this.ledgerDispatcher.runWhenDue();
        failures = 0;
        if (read === 0 && this.running) {
          // Wakes up in time to save deferred cursors if the streams stay quiet.
          const blockMs = Math.min(this.options.idleBlockMs, this.cursorSaveDueInMs());
          await this.reader.waitForEvents(this.positions ?? [], Math.max(1, blockMs));
        } else if (read < this.options.batchSize && this.running) {
          await sleep(batchStartedAt + this.options.batchWaitMs - Date.now());
        }
      } catch (error) {
        if (!this.running) {
          break;
        }

        failures += 1;
        this.forgetPositions();
        this.logger.warn({
          message: 'projector step failed; retrying from the stored cursors',
          error: error instanceof Error ? error.message : String(error),
          failures,
        });
        await sleep(Math.min(200 * 2 ** failures, 5000));
      }
    }
  }

  private async applyBatch(reads: StreamRead[], eventCount: number): Promise<void> {
    const positions = reads.map((read) => advance(read));
    if (!reads.some((read) => read.events.some(canChangeRow))) {
      this.deferCursors(positions, eventCount);

      return;
    }

    const facts = await this.readFacts(reads);
    const stalledEvents = await this.findStalledRetries(reads);
    // `stalled` events come with the others only for the look-ahead of `findStalledRetries`.
    const changing = reads.map((read) => read.events.filter(canChangeRow));
    const rowIds = [...new Set(changing.flat().map(eventRowId))].filter(
      (id): id is number => id !== undefined,
    );

    // Two round trips: the transaction's start, the cursor check and the rows' read; then
    // every write and the commit. One statement per call cost seven per batch.
    const result = await withPooledConnection(this.batchPool(), async (connection) => {
      const rows = await this.writer.beginBatch(
        connection,
        this.expectedCursors(positions),
        rowIds,
      );
      const recorded = this.recordBatch(reads, changing, rows, facts, stalledEvents);
      const moved = this.movedPositions(positions);
      await this.writer.commitBatch(connection, recorded.changed, recorded.transitions, moved);

      return recorded;
    });

    this.markSaved(positions, eventCount);
    this.stats.batches += 1;
    this.stats.transitionsRecorded += result.transitions.length;

    // Only after the commit: a job leaves Redis once the ledger holds its end.
    for (const [queue, jobIds] of result.finishedByQueue) {
      await this.cleaner.remove(`${this.registry.options.prefix}:${queue}:`, jobIds);
    }
  }

  /** One connection is enough: a projector writes one batch at a time. */
  private batchPool(): Pool {
    this.batchConnections ??= createMultiStatementPool(this.dataSource, 1);

    return this.batchConnections;
  }

  /** A batch that changes no row: its cursors wait to be saved with a later write. */
  private deferCursors(positions: StreamPosition[], eventCount: number): void {
    this.positions = positions;
    this.unsaved ??= { since: Date.now(), entries: 0 };
    this.unsaved.entries += eventCount;
  }

  /** How soon deferred cursors must be saved; `Infinity` when none wait. */
  private cursorSaveDueInMs(): number {
    return this.unsaved
      ? this.unsaved.since + this.options.cursorSaveDeferMs - Date.now()
      : Number.POSITIVE_INFINITY;
  }

  /** Saves cursors that batches changing no row left unsaved, in a transaction of their own. */
  private async saveDeferredCursors(): Promise<void> {
    const positions = this.positions;
    if (!this.unsaved || !positions) {
      return;
    }

    await this.dataSource.transaction(async (manager) => {
      await this.assertCursorsAsSaved(manager, positions);
      await this.saveMovedCursors(manager, positions);
    });
    this.markSaved(positions, 0);
  }

  /**
   * Confirms under a row lock, before anything else is written, that the stored cursors are still
   * the ones this projector saved or loaded: otherwise another projector got there first, and
   * the batch is dropped.
   */
  private async assertCursorsAsSaved(
    manager: EntityManager,
    positions: StreamPosition[],
  ): Promise<void> {
    await this.writer.assertCursorsUnchanged(manager, this.expectedCursors(positions));
  }

  /** The cursors the database must still hold: those saved or loaded last, by stream. */
  private expectedCursors(positions: StreamPosition[]): StreamPosition[] {
    return positions.map((position) => this.saved.get(position.key) ?? position);
  }

  private async saveMovedCursors(
    manager: EntityManager,
    positions: StreamPosition[],
  ): Promise<void> {
    await this.writer.saveCursors(manager, this.movedPositions(positions));
  }

  /** The positions that differ from the saved ones: only those need writing. */
  private movedPositions(positions: StreamPosition[]): StreamPosition[] {
    return positions.filter((position) => this.saved.get(position.key) !== position);
  }

  /** After a commit: the events are read for good, counted once, and not read again. */
  private markSaved(positions: StreamPosition[], eventCount: number): void {
    this.positions = positions;
    this.stats.eventsRead += eventCount + (this.unsaved?.entries ?? 0);
    this.unsaved = undefined;
    for (const position of positions) {
      this.saved.set(position.key, position);
    }
  }

  /** After a failure: read again from the stored cursors, which may be behind the read ones. */
  private forgetPositions(): void {
    this.positions = undefined;
    this.unsaved = undefined;
    this.saved.clear();
  }

  /** Applies the batch's events to its rows, in memory: what to write, and which jobs ended. */
  private recordBatch(
    reads: StreamRead[],
    changing: QueueEvent[][],
    rows: Map<number, LedgerRowState>,
    facts: Map<string, JobFacts>,
    stalledEvents: Set<string>,
  ): BatchResult {
    const changed = new Map<number, LedgerRowState>();
    const transitions: TransitionRecord[] = [];
    const finishedByQueue = new Map<string, string[]>();

    for (const [index, read] of reads.entries()) {
      for (const event of changing[index]) {
        const row = rows.get(eventRowId(event) ?? 0);
        if (!row) {
          this.stats.eventsWithoutRow += event.jobId ? 1 : 0;
          continue;
        }

        const outcome = applyEvent(
          row,
          event,
          facts.get(event.jobId ?? '') ?? {},
          stalledEvents.has(event.id),
        );
        if (outcome.changed) {
          changed.set(row.id, row);
        }
        if (outcome.transition) {
          transitions.push(outcome.transition);
          if (isTerminal(outcome.transition.toStatus)) {
            const list = finishedByQueue.get(read.position.queue) ?? [];
            list.push(toBullJobId(row.id));
            finishedByQueue.set(read.position.queue, list);
          }
        }
      }
    }

    return { changed: [...changed.values()], transitions, finishedByQueue };
  }

  /** Redis facts that events leave out: who ran an attempt, and why a retried attempt failed. */
  private async readFacts(reads: StreamRead[]): Promise<Map<string, JobFacts>> {
    // One read per job, however many of its events the batch holds; the attempts' errors only
    // for jobs that were retried in it.
    const wanted = new Map<string, { queue: string; retried: boolean }>();
    for (const read of reads) {
      for (const event of read.events) {
        if (event.jobId && needsFacts(event)) {
          const entry = wanted.get(event.jobId) ?? { queue: read.position.queue, retried: false };
          entry.retried ||= event.event !== 'active';
          wanted.set(event.jobId, entry);
        }
      }
    }
    if (wanted.size === 0) {
      return new Map();
    }

    const jobs = [...wanted];
    const read = await this.factsReader.read(
      jobs.map(([jobId, { queue, retried }]) => ({
        key: this.registry.jobKey(queue, jobId),
        withAttemptErrors: retried,
      })),
    );

    return new Map(jobs.map(([jobId], index) => [jobId, read[index]]));
  }

  /**
   * BullMQ writes `stalled` right after the `waiting` of a job whose worker was lost. Returns
   * the ids of such `waiting` events, looking past the end of the batch where needed.
   */
  private async findStalledRetries(reads: StreamRead[]): Promise<Set<string>> {
    const stalled = new Set<string>();

    for (const read of reads) {
      for (let index = 0; index < read.events.length; index++) {
        const event = read.events[index];
        if (event.event !== 'waiting' || event.fields.prev !== 'active') {
          continue;
        }

        const next =
          read.events[index + 1] ?? (await this.reader.peekAfter(read.position, event.id));
        if (next?.event === 'stalled' && next.jobId === event.jobId) {
          stalled.add(event.id);
        }
      }
    }

    return stalled;
  }

  private async repairIfEventsWereLost(read: StreamRead): Promise<'reset' | 'repaired' | 'intact'> {
    const { position, stream, marker } = read;

    if (marker !== position.epoch && (await this.streamStillHoldsCursor(read))) {
      // The marker alone went missing (it was never written, or deleted by hand): the stream
      // still holds what the cursor points at, so nothing was lost and nothing needs repair.
      this.logger.warn({
        message: 'ledger epoch marker missing while the event stream is intact; restoring it',
        queue: position.queue,
      });
      await this.redis.set(position.markerKey, position.epoch);
      this.reconcileDueAt = 0;
    } else if (marker !== position.epoch) {
      await this.resetAfterDataLoss(position);

      return 'reset';
    }

    const trimmedBefore = stream.entriesAdded - stream.length;

    if (stream.exists && position.entriesRead < trimmedBefore) {
      this.logger.warn({
        message: 'the event stream was trimmed past the ledger cursor; repairing from Redis state',
        queue: position.queue,
        missedEvents: trimmedBefore - position.entriesRead,
      });
      await this.repairer.repairQueue(position.queue, 'events trimmed before they were read');
      // The events read in this step are the ones right after the trimmed part.
      position.entriesRead = trimmedBefore;
      await this.writer.saveCursors(this.dataSource.manager, [position]);
      this.saved.set(position.key, position);
      this.stats.repairs += 1;

      return 'repaired';
    }

    return 'intact';
  }

  /**
   * Whether Redis still holds the events the ledger has read: the stream's counter has not gone
   * back and the entry under the cursor is still there (or was trimmed, which the gap check
   * handles). A stream recreated after a restart or a flush never holds the old cursor's id,
   * since new ids are stamped with a later time.
   */
  private async streamStillHoldsCursor(read: StreamRead): Promise<boolean> {
    const { position, stream } = read;
    if (position.cursor === STREAM_START && position.entriesRead === 0) {
      return true;
    }
    if (!stream.exists || stream.entriesAdded < position.entriesRead) {
      return false;
    }

    const trimmedPastCursor = position.entriesRead < stream.entriesAdded - stream.length;
    const atCursor = await this.redis.xrange(position.key, position.cursor, position.cursor);

    return atCursor.length === 1 || trimmedPastCursor;
  }

  /**
   * Redis restarted empty or was flushed: mark the rows whose unread starts may have died with
   * it, repair what Redis still shows, and start the queue's new stream from its beginning.
   */
  private async resetAfterDataLoss(position: StreamPosition): Promise<void> {
    this.logger.warn({
      message: "Redis no longer holds this queue's events (restarted empty or flushed); repairing",
      queue: position.queue,
    });
    const reset = { ...position, cursor: STREAM_START, entriesRead: 0, epoch: randomUUID() };
    const marked = await this.dataSource.transaction(async (manager) => {
      const count = await this.writer.markRedisDataLoss(
        manager,
        position.queue,
        REDIS_DATA_LOSS_NOTE,
      );
      await this.writer.saveCursors(manager, [reset]);

      return count;
    });
    this.logger.warn({
      message: 'unfinished rows marked: their attempt counts may miss starts Redis lost',
      queue: position.queue,
      rows: marked,
    });

    await this.redis.set(position.markerKey, reset.epoch);
    await this.repairer.repairQueue(position.queue, 'Redis lost the queue events');
    // BullMQ keeps the stream length in the queue's meta hash, which went with the data.
    await this.redis.hsetnx(
      `${this.registry.options.prefix}:${position.queue}:meta`,
      'opts.maxLenEvents',
      this.registry.options.eventsMaxLen,
    );
    this.stats.repairs += 1;
    // Jobs Redis lost must be sent again: reconcile at once rather than at the next interval.
    this.reconcileDueAt = 0;
  }

  private async loadPositions(): Promise<StreamPosition[]> {
    const queues = this.registry.jobTypes;
    const stored = await this.writer.loadCursors(
      this.dataSource.manager,
      queues.map((queue) => this.registry.eventsKey(queue)),
    );
    const positions = queues.map((queue): StreamPosition => {
      const record = stored.get(this.registry.eventsKey(queue));

      return {
        queue,
        key: this.registry.eventsKey(queue),
        markerKey: epochMarkerKey(this.registry.options.prefix, queue),
        cursor: record?.last_event_id ?? STREAM_START,
        entriesRead: Number(record?.entries_read ?? 0),
        epoch: record?.epoch ?? randomUUID(),
      };
    });

    // Marker first: a cursor saved without its marker would look like a Redis data loss.
    const fresh = positions.filter((position) => !stored.has(position.key));
    for (const position of fresh) {
      await this.redis.set(position.markerKey, position.epoch);
    }
    await this.writer.saveCursors(this.dataSource.manager, fresh);
    this.saved = new Map(positions.map((position) => [position.key, position]));

    return positions;
  }

  private async ensureLeadership(): Promise<boolean> {
    if (this.leader && Date.now() - this.leaderCheckedAt < 5000) {
      return true;
    }

    try {
      if (this.leader) {
        const [{ mine }] = (await this.leader.query(
          'SELECT IS_USED_LOCK(?) = CONNECTION_ID() AS mine',
          [this.lockName],
        )) as Array<{ mine: number | string | null }>;
        if (Number(mine) === 1) {
          this.leaderCheckedAt = Date.now();

          return true;
        }
        this.logger.warn({ message: 'projector lost its leadership lock' });
        await this.releaseLeadership();
      }

      return await this.acquireLeadership();
    } catch (error) {
      this.logger.warn({ message: 'leadership check failed', error: String(error) });
      await this.releaseLeadership();

      return false;
    }
  }

  private async acquireLeadership(): Promise<boolean> {
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    const [{ acquired }] = (await runner.query('SELECT GET_LOCK(?, 0) AS acquired', [
      this.lockName,
    ])) as Array<{ acquired: number | string | null }>;

    if (Number(acquired) !== 1) {
      await runner.release();

      return false;
    }

    const [{ version }] = (await runner.query('SELECT VERSION() AS version')) as Array<{
      version: string;
    }>;
    this.writer.useServerVersion(version);
    this.leader = runner;
    this.leaderCheckedAt = Date.now();
    this.forgetPositions();
    this.logger.log({ message: 'projector is the active ledger writer' });

    return true;
  }

  private async releaseLeadership(): Promise<void> {
    const runner = this.leader;
    this.leader = undefined;
    if (!runner) {
      return;
    }

    try {
      await runner.query('SELECT RELEASE_LOCK(?)', [this.lockName]);
    } catch {
      // The connection is gone, and the lock with it.
    }
    await runner.release().catch(() => undefined);
  }
}

function eventRowId(event: QueueEvent): number | undefined {
  return event.jobId ? fromBullJobId(event.jobId) : undefined;
}

function needsFacts(event: QueueEvent): boolean {
  return (
    event.event === 'active' ||
    event.event === 'delayed' ||
    (event.event === 'waiting' && event.fields.prev === 'active')
  );
}

function advance(read: StreamRead): StreamPosition {
  if (read.lastEntryId === undefined) {
    return read.position;
  }

  return {
    ...read.position,
    cursor: read.lastEntryId,
    entriesRead: read.position.entriesRead + read.entriesRead,
  };
}

function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}

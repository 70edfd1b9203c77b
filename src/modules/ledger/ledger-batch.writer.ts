import { PoolConnection } from 'mysql2/promise';
import { EntityManager } from 'typeorm';

import { chunks } from '../../common/chunks';
import { JobStatus } from '../../entities/job-status';
import { runInOneCall, Statement } from '../database/multi-statement';
import { rowValues } from '../database/sql-values';
import { StreamPosition } from './event-stream.reader';
import { LedgerRowState, TransitionRecord } from './transition-rules';

/** Rows per multi-row statement; keeps well below the 65,535 placeholders a statement allows. */
const ROWS_PER_STATEMENT = 1000;

interface RowRecord {
  id: string | number;
  status: JobStatus;
  attempt_count: number;
  error_message: string | null;
  worker: string | null;
  run_at: Date | null;
  dispatched_at: Date | null;
  started_at: Date | null;
  finished_at: Date | null;
  last_event_id: string | null;
}

interface CursorRecord {
  stream_key: string;
  last_event_id: string;
  entries_read: string | number;
  epoch: string;
}

/** Raised when another projector moved a cursor: this batch must be dropped and re-read. */
export class CursorMovedError extends Error {
  constructor(queue: string) {
    super(`the ledger cursor of queue "${queue}" was moved by another projector`);
    this.name = 'CursorMovedError';
  }
}

/**
 * Whether the server takes `UNION ALL VALUES (…), (…)`: MariaDB from 10.3. MySQL spells table
 * value constructors differently (`VALUES ROW(…)`), so it gets the portable form.
 */
export function supportsTableValueConstructor(serverVersion: string): boolean {
  const match = /^(\d+)\.(\d+)/.exec(serverVersion);
  if (!match || !/mariadb/i.test(serverVersion)) {
    return false;
  }

  const [major, minor] = [Number(match[1]), Number(match[2])];

  return major > 10 || (major === 10 && minor >= 3);
}

/** The projector's SQL: read rows, write rows, history and cursors in one transaction. */
export class LedgerBatchWriter {
  private tableValueConstructor = false;

  /** Chooses the statement forms for the server, from its `VERSION()`. */
  useServerVersion(serverVersion: string): void {
    this.tableValueConstructor = supportsTableValueConstructor(serverVersion);
  }

  async loadRows(manager: EntityManager, ids: number[]): Promise<Map<number, LedgerRowState>> {
    const results: RowRecord[][] = [];
    for (const statement of rowReads(ids)) {
      results.push(await manager.query<RowRecord[]>(statement.sql, statement.parameters));
    }

    return toRowMap(results);
  }

  /**
   * Opens a batch's transaction on a multi-statement connection and, in the same round trip,
   * checks its cursors under a row lock and reads its rows. Throws `CursorMovedError` (with the
   * transaction still open: the caller rolls back) when another projector got there first.
   */
  async beginBatch(
    connection: PoolConnection,
    expected: StreamPosition[],
    ids: number[],
  ): Promise<Map<number, LedgerRowState>> {
    const cursorRead = cursorReads(
      expected.map((position) => position.key),
      true,
    );
    const [, ...results] = await runInOneCall(connection, [
      { sql: 'START TRANSACTION', parameters: [] },
      ...cursorRead,
      ...rowReads(ids),
    ]);

    const cursorRecords = (cursorRead.length > 0 ? results.shift() : []) as CursorRecord[];
    assertUnchanged(expected, toCursorMap(cursorRecords));

    return toRowMap(results as RowRecord[][]);
  }

  /** Writes a batch's rows, history and moved cursors and commits, in one round trip. */
  async commitBatch(
    connection: PoolConnection,
    rows: LedgerRowState[],
    transitions: TransitionRecord[],
    positions: StreamPosition[],
  ): Promise<void> {
    await runInOneCall(connection, [
      ...this.rowUpdates(rows),
      ...transitionInserts(transitions),
      ...cursorSaves(positions),
      { sql: 'COMMIT', parameters: [] },
    ]);
  }

  /**
   * Ids of a queue's pending and processing rows, a chunk at a time in id order; with
   * `olderThanMs`, only rows created at least that long ago.
   */
  async *unfinishedRowIds(
    manager: EntityManager,
    queue: string,
    chunkSize: number,
    olderThanMs = 0,
  ): AsyncGenerator<number[]> {
    let afterId = 0;

    for (;;) {
      const rows = await manager.query<Array<{ id: string | number }>>(
        `SELECT id FROM job_queue
         WHERE job_type = ? AND status IN ('pending', 'processing') AND id > ?
           AND (? = 0 OR created_at < NOW(3) - INTERVAL ? MICROSECOND)
         ORDER BY id LIMIT ?`,
        [queue, afterId, olderThanMs, olderThanMs * 1000, chunkSize],
      );
      if (rows.length === 0) {
        return;
      }

      const ids = rows.map((row) => Number(row.id));
      yield ids;
      afterId = ids[ids.length - 1];
    }
  }

  async loadCursors(
    manager: EntityManager,
    streamKeys: string[],
    lock = false,
  ): Promise<Map<string, CursorRecord>> {
    const [statement] = cursorReads(streamKeys, lock);
    if (!statement) {
      return new Map();
    }

    return toCursorMap(await manager.query<CursorRecord[]>(statement.sql, statement.parameters));
  }

  /**
   * Confirms, under a row lock, that the stored cursors are still the `expected` ones (those the
   * projector last saved or loaded); otherwise another projector got there first.
   */
  async assertCursorsUnchanged(manager: EntityManager, expected: StreamPosition[]): Promise<void> {
    const stored = await this.loadCursors(
      manager,
      expected.map((position) => position.key),
      true,
    );

    assertUnchanged(expected, stored);
  }

  async updateRows(manager: EntityManager, rows: LedgerRowState[]): Promise<void> {
    for (const statement of this.rowUpdates(rows)) {
      await manager.query(statement.sql, statement.parameters);
    }
  }

  /** One statement per chunk of rows: a derived table of new values joined on id. */
  private rowUpdates(rows: LedgerRowState[]): Statement[] {
    return chunks(rows, ROWS_PER_STATEMENT).map((chunk) => {
      const firstRow = `SELECT ? AS id, ? AS status, ? AS attempt_count, ? AS error_message,
        ? AS worker, ? AS run_at, ? AS dispatched_at, ? AS started_at, ? AS finished_at,
        ? AS last_event_id`;
      const otherRows = this.otherRowsOfDerivedTable(chunk.length - 1);

      return {
        sql: `UPDATE job_queue j JOIN (${firstRow}${otherRows}) v ON j.id = v.id
         SET j.status = v.status, j.attempt_count = v.attempt_count,
             j.error_message = v.error_message, j.worker = v.worker, j.run_at = v.run_at,
             j.dispatched_at = v.dispatched_at, j.started_at = v.started_at,
             j.finished_at = v.finished_at, j.last_event_id = v.last_event_id`,
        parameters: rowValues(chunk, (row) => [
          row.id,
          row.status,
          row.attemptCount,
          row.errorMessage,
          row.worker,
          row.runAt,
          row.dispatchedAt,
          row.startedAt,
          row.finishedAt,
          row.lastEventId,
        ]),
      };
    });
  }

  /**
   * The rows after the first, which names the columns. On MariaDB one table value constructor,
   * parsed and materialised as one query block: a SELECT per row joined with UNION ALL cost
   * about 55 us of database CPU per row updated, this form about 35.
   */
  private otherRowsOfDerivedTable(count: number): string {
    if (count === 0) {
      return '';
    }

    const row = '?, ?, ?, ?, ?, ?, ?, ?, ?, ?';

    return this.tableValueConstructor
      ? ` UNION ALL VALUES ${Array(count).fill(`(${row})`).join(', ')}`
      : ` UNION ALL SELECT ${row}`.repeat(count);
  }

  async insertTransitions(manager: EntityManager, transitions: TransitionRecord[]): Promise<void> {
    for (const statement of transitionInserts(transitions)) {
      await manager.query(statement.sql, statement.parameters);
    }
  }

  /**
   * Records, on every unfinished row of a queue whose Redis data was lost, that starts it made
   * after its last recorded transition may be missing from `attempt_count`: their events died
   * with Redis before they were read. The status does not change; the row says what it cannot
   * know instead of claiming an exact count. Plain reads and multi-row inserts: an
   * `INSERT … SELECT` would lock the rows it reads and block concurrent enqueues.
   */
  async markRedisDataLoss(manager: EntityManager, queue: string, note: string): Promise<number> {
    let marked = 0;

    for await (const ids of this.unfinishedRowIds(manager, queue, ROWS_PER_STATEMENT)) {
      const rows = [...(await this.loadRows(manager, ids)).values()];
      await this.insertTransitions(
        manager,
        rows.map((row) => dataLossMark(row, note)),
      );
      marked += rows.length;
    }

    return marked;
  }

  async saveCursors(manager: EntityManager, positions: StreamPosition[]): Promise<void> {
    for (const statement of cursorSaves(positions)) {
      await manager.query(statement.sql, statement.parameters);
    }
  }
}

function rowReads(ids: number[]): Statement[] {
  return chunks(ids, ROWS_PER_STATEMENT).map((chunk) => ({
    sql: `SELECT id, status, attempt_count, error_message, worker, run_at, dispatched_at,
                 started_at, finished_at, last_event_id
          FROM job_queue WHERE id IN (${placeholders(chunk.length)})`,
    parameters: chunk,
  }));
}

function toRowMap(results: RowRecord[][]): Map<number, LedgerRowState> {
  const rows = new Map<number, LedgerRowState>();
  for (const record of results.flat()) {
    const row = toRowState(record);
    rows.set(row.id, row);
  }

  return rows;
}

/** None for no keys: `IN ()` is not SQL. */
function cursorReads(streamKeys: string[], lock: boolean): Statement[] {
  if (streamKeys.length === 0) {
    return [];
  }

  return [
    {
      sql: `SELECT stream_key, last_event_id, entries_read, epoch FROM ledger_cursor
            WHERE stream_key IN (${placeholders(streamKeys.length)}) ${lock ? 'FOR UPDATE' : ''}`,
      parameters: streamKeys,
    },
  ];
}

function toCursorMap(records: CursorRecord[]): Map<string, CursorRecord> {
  return new Map(records.map((record) => [record.stream_key, record]));
}

function assertUnchanged(expected: StreamPosition[], stored: Map<string, CursorRecord>): void {
  for (const position of expected) {
    const record = stored.get(position.key);
    const storedCursor = record?.last_event_id ?? '0-0';
    if (storedCursor !== position.cursor || (record && record.epoch !== position.epoch)) {
      throw new CursorMovedError(position.queue);
    }
  }
}

function transitionInserts(transitions: TransitionRecord[]): Statement[] {
  return chunks(transitions, ROWS_PER_STATEMENT).map((chunk) => ({
    sql: `INSERT INTO job_queue_history
            (job_id, from_status, to_status, attempt, error_message, worker, occurred_at, source,
             event_id, note)
          VALUES ${Array(chunk.length)
            .fill(`(${placeholders(10)})`)
            .join(', ')}`,
    parameters: rowValues(chunk, (record) => [
      record.jobId,
      record.fromStatus,
      record.toStatus,
      record.attempt,
      record.errorMessage,
      record.worker,
      record.occurredAt,
      record.source,
      record.eventId,
      record.note,
    ]),
  }));
}

function cursorSaves(positions: StreamPosition[]): Statement[] {
  if (positions.length === 0) {
    return [];
  }

  return [
    {
      sql: `INSERT INTO ledger_cursor (stream_key, last_event_id, entries_read, epoch)
            VALUES ${Array(positions.length).fill('(?, ?, ?, ?)').join(', ')}
            ON DUPLICATE KEY UPDATE last_event_id = VALUES(last_event_id),
              entries_read = VALUES(entries_read), epoch = VALUES(epoch)`,
      parameters: rowValues(positions, (position) => [
        position.key,
        position.cursor,
        position.entriesRead,
        position.epoch,
      ]),
    },
  ];
}

function dataLossMark(row: LedgerRowState, note: string): TransitionRecord {
  return {
    jobId: row.id,
    fromStatus: row.status,
    toStatus: row.status,
    attempt: row.attemptCount,
    errorMessage: null,
    worker: row.worker,
    occurredAt: new Date(),
    source: 'repair',
    eventId: null,
    note: note.slice(0, 255),
  };
}

function toRowState(record: RowRecord): LedgerRowState {
  return {
    id: Number(record.id),
    status: record.status,
    attemptCount: record.attempt_count,
    errorMessage: record.error_message,
    worker: record.worker,
    runAt: record.run_at,
    dispatchedAt: record.dispatched_at,
    startedAt: record.started_at,
    finishedAt: record.finished_at,
    lastEventId: record.last_event_id,
  };
}

export function placeholders(count: number): string {
  return Array(count).fill('?').join(', ');
}

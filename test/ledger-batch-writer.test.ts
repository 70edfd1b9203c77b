import { Pool, PoolConnection } from 'mysql2/promise';
import { DataSource } from 'typeorm';

import {
  createMultiStatementPool,
  withPooledConnection,
} from '../src/modules/database/multi-statement';
import { StreamPosition } from '../src/modules/ledger/event-stream.reader';
import {
  CursorMovedError,
  LedgerBatchWriter,
  placeholders,
} from '../src/modules/ledger/ledger-batch.writer';
import { LedgerRowState, TransitionRecord } from '../src/modules/ledger/transition-rules';
import { QueueService } from '../src/modules/queue/queue.service';
import { getService, useTestApp } from './support/test-context';

describe('the ledger writer updating rows in one statement', () => {
  const shared = useTestApp('writer', { roles: ['api'], config: { diagnosticJobs: true } });

  it.each([
    ['MariaDB table value constructor', '10.11.19-MariaDB'],
    ['portable UNION ALL SELECT', '8.0.36'],
  ])('writes each row its own values (%s)', async (_, serverVersion) => {
    const queue = getService(shared.app, QueueService);
    const dataSource = shared.app.get(DataSource);
    const jobs = await queue.enqueueMany(
      Array.from({ length: 3 }, (__, i) => ({ jobType: 'diag_noop', payload: { i } })),
    );
    const writer = new LedgerBatchWriter();
    writer.useServerVersion(serverVersion);
    const at = new Date('2026-12-03T10:00:00.123Z');

    const rows: LedgerRowState[] = jobs.map((job, i) => ({
      id: job.id,
      status: i === 0 ? 'failed' : 'completed',
      attemptCount: i + 1,
      errorMessage: i === 0 ? "it's broken" : null,
      worker: i === 2 ? null : `host:${i}`,
      runAt: null,
      dispatchedAt: at,
      startedAt: new Date(at.getTime() + i),
      finishedAt: new Date(at.getTime() + 10 + i),
      lastEventId: `1764756000123-${i}`,
    }));
    await dataSource.transaction((manager) => writer.updateRows(manager, rows));

    const stored = await writer.loadRows(
      dataSource.manager,
      jobs.map((job) => job.id),
    );
    expect(jobs.map((job) => stored.get(job.id))).toEqual(rows);
  });
});

describe('a ledger batch in two round trips', () => {
  const shared = useTestApp('batchtx', { roles: ['api'], config: { diagnosticJobs: true } });
  let pool: Pool;
  let writer: LedgerBatchWriter;
  let calls: number;

  beforeAll(async () => {
    const dataSource = shared.app.get(DataSource);
    pool = createMultiStatementPool(dataSource, 1);
    writer = new LedgerBatchWriter();
    const [{ version }] = await dataSource.query<Array<{ version: string }>>(
      'SELECT VERSION() AS version',
    );
    writer.useServerVersion(version);
  });

  afterAll(() => pool.end());

  /** The pool's one connection, counting the calls made on it. */
  function inBatch<T>(work: (connection: PoolConnection) => Promise<T>): Promise<T> {
    calls = 0;

    return withPooledConnection(pool, (connection) => {
      const counted = Object.create(connection) as PoolConnection;
      counted.query = ((...args: Parameters<PoolConnection['query']>) => {
        calls += 1;

        return connection.query(...args);
      }) as PoolConnection['query'];

      return work(counted);
    });
  }

  function position(key: string, cursor: string, entriesRead: number): StreamPosition {
    return {
      queue: 'diag_noop',
      key,
      markerKey: `${key}:marker`,
      cursor,
      entriesRead,
      epoch: 'e1',
    };
  }

  function completion(row: LedgerRowState, at: Date): TransitionRecord {
    return {
      jobId: row.id,
      fromStatus: 'pending',
      toStatus: 'completed',
      attempt: 1,
      errorMessage: null,
      worker: 'host:1',
      occurredAt: at,
      source: 'event',
      eventId: '1764756000123-0',
      note: null,
    };
  }

  async function historyOf(jobIds: number[]): Promise<string[]> {
    const rows = await shared.app.get(DataSource).query<Array<{ to_status: string }>>(
      `SELECT to_status FROM job_queue_history
         WHERE job_id IN (${placeholders(jobIds.length)}) ORDER BY id`,
      jobIds,
    );

    return rows.map((row) => row.to_status);
  }

  async function enqueue(count: number): Promise<number[]> {
    const jobs = await getService(shared.app, QueueService).enqueueMany(
      Array.from({ length: count }, (_, i) => ({ jobType: 'diag_noop', payload: { i } })),
    );

    return jobs.map((job) => job.id);
  }

  it('reads rows under a cursor check, then writes rows, history and cursor and commits', async () => {
    const ids = await enqueue(3);
    const key = `${shared.env.prefix}:round-trips:events`;
    const start = position(key, '0-0', 0);
    const next = position(key, '1764756000123-0', 6);
    const at = new Date('2026-12-03T10:00:00.123Z');

    await inBatch(async (connection) => {
      const rows = await writer.beginBatch(connection, [start], ids);
      expect([...rows.keys()].sort()).toEqual(ids);
      const written = [...rows.values()].map((row) => ({
        ...row,
        status: 'completed' as const,
        attemptCount: 1,
        finishedAt: at,
      }));
      await writer.commitBatch(
        connection,
        written,
        written.map((row) => completion(row, at)),
        [next],
      );
    });

    expect(calls).toBe(2);
    const stored = await writer.loadRows(shared.app.get(DataSource).manager, ids);
    expect(ids.map((id) => [stored.get(id)?.status, stored.get(id)?.finishedAt])).toEqual(
      ids.map(() => ['completed', at]),
    );
    expect(await historyOf(ids)).toEqual([
      ...ids.map(() => 'pending'),
      ...ids.map(() => 'completed'),
    ]);
    const cursors = await writer.loadCursors(shared.app.get(DataSource).manager, [key]);
    expect(cursors.get(key)).toMatchObject({ last_event_id: next.cursor, epoch: 'e1' });
    expect(Number(cursors.get(key)?.entries_read)).toBe(6);
  });

  it('drops the batch when another projector moved the cursor, and the connection stays usable', async () => {
    const ids = await enqueue(2);
    const key = `${shared.env.prefix}:moved:events`;
    await writer.saveCursors(shared.app.get(DataSource).manager, [position(key, '5-0', 5)]);

    const outcome = await inBatch((connection) =>
      writer.beginBatch(connection, [position(key, '3-0', 3)], ids),
    ).catch((error: unknown) => error);

    expect(outcome).toBeInstanceOf(CursorMovedError);
    // The transaction was rolled back: its lock on the cursor row is gone.
    const locked = await shared.app
      .get(DataSource)
      .transaction((manager) =>
        manager.query(
          'SELECT stream_key FROM ledger_cursor WHERE stream_key = ? FOR UPDATE NOWAIT',
          [key],
        ),
      );
    expect(locked).toEqual([{ stream_key: key }]);
  });

  it('writes nothing when a statement of the commit fails', async () => {
    const ids = await enqueue(2);
    const dataSource = shared.app.get(DataSource);
    const key = `${shared.env.prefix}:refused:events`;
    const at = new Date('2026-12-03T11:00:00.000Z');
    await dataSource.query(
      `CREATE TRIGGER refuse_batch_history BEFORE INSERT ON job_queue_history
       FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'history refused by the test'`,
    );

    try {
      const outcome = await inBatch(async (connection) => {
        const rows = [...(await writer.beginBatch(connection, [], ids)).values()];
        const written = rows.map((row) => ({ ...row, status: 'completed' as const }));
        await writer.commitBatch(
          connection,
          written,
          written.map((row) => completion(row, at)),
          [position(key, '9-0', 9)],
        );
      }).catch((error: unknown) => error);
      expect(String(outcome)).toMatch(/history refused by the test/);
    } finally {
      await dataSource.query('DROP TRIGGER refuse_batch_history');
    }

    const stored = await writer.loadRows(dataSource.manager, ids);
    expect(ids.map((id) => stored.get(id)?.status)).toEqual(['pending', 'pending']);
    expect(await historyOf(ids)).toEqual(['pending', 'pending']);
    expect((await writer.loadCursors(dataSource.manager, [key])).size).toBe(0);
  });
});

import { DataSource } from 'typeorm';

import { JobEntity } from '../src/entities';
import { LedgerUnavailableError } from '../src/modules/queue/queue.errors';
import { QueueService } from '../src/modules/queue/queue.service';
import { getService, useTestApp } from './support/test-context';

const JOB_TYPE = 'diag_noop';

async function countRows(dataSource: DataSource, table: string): Promise<number> {
  const [{ n }] = await dataSource.query<Array<{ n: string | number }>>(
    `SELECT COUNT(*) AS n FROM ${table}`,
  );

  return Number(n);
}

describe('enqueue without idempotency keys (rows and history in one round trip)', () => {
  const context = useTestApp('oneroundtrip', { roles: ['api'], config: { diagnosticJobs: true } });

  it('returns exactly the rows it stored, each with one creation history row', async () => {
    const queue = getService(context.app, QueueService);
    const dataSource = context.app.get(DataSource);

    const returned = await queue.enqueueMany([
      { jobType: JOB_TYPE, payload: { n: 1 }, priority: 7 },
      { jobType: JOB_TYPE, payload: { n: 2 }, delayMs: 1500, attempts: 3 },
      {
        jobType: JOB_TYPE,
        payload: { n: 3 },
        attempts: 4,
        backoff: { strategy: 'exponential', delayMs: 200, jitter: 0.5 },
      },
    ]);

    const stored = await dataSource
      .getRepository(JobEntity)
      .find({ where: returned.map((row) => ({ id: row.id })), order: { id: 'ASC' } });
    expect(stored).toEqual(returned);
    expect(returned[1].runAt!.getTime() - returned[1].createdAt.getTime()).toBe(1500);
    expect(returned.map((row) => row.id)).toEqual([
      returned[0].id,
      returned[0].id + 1,
      returned[0].id + 2,
    ]);

    for (const row of returned) {
      const history = await queue.history(row.id);
      expect(history.map((entry) => [entry.fromStatus, entry.toStatus, entry.source])).toEqual([
        [null, 'pending', 'enqueue'],
      ]);
      expect(history[0].occurredAt).toEqual(row.createdAt);
    }
  });

  it('writes nothing when a statement of the call fails, and its connections stay usable', async () => {
    const queue = getService(context.app, QueueService);
    const dataSource = context.app.get(DataSource);
    const rowsBefore = await countRows(dataSource, 'job_queue');
    const historyBefore = await countRows(dataSource, 'job_queue_history');

    // The history INSERT comes after the rows' INSERT in the same call: failing it must take
    // the rows back with it.
    await dataSource.query(
      `CREATE TRIGGER refuse_creation_history BEFORE INSERT ON job_queue_history
       FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'history refused by the test'`,
    );
    try {
      const attempts = Array.from({ length: 6 }, (_, i) =>
        queue.enqueue(JOB_TYPE, { i }).then(
          () => 'accepted',
          (error: unknown) => error,
        ),
      );
      for (const outcome of await Promise.all(attempts)) {
        expect(outcome).toBeInstanceOf(LedgerUnavailableError);
      }
    } finally {
      await dataSource.query('DROP TRIGGER refuse_creation_history');
    }

    expect(await countRows(dataSource, 'job_queue')).toBe(rowsBefore);
    expect(await countRows(dataSource, 'job_queue_history')).toBe(historyBefore);

    // No connection was returned to the pool inside an open transaction.
    const accepted = await Promise.all(
      Array.from({ length: 8 }, (_, i) => queue.enqueue(JOB_TYPE, { after: i })),
    );
    expect(await countRows(dataSource, 'job_queue')).toBe(rowsBefore + accepted.length);
    expect(await countRows(dataSource, 'job_queue_history')).toBe(historyBefore + accepted.length);
  });
});

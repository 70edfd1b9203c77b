import { DataSource } from 'typeorm';

import { epochMarkerKey } from '../src/modules/ledger/ledger.constants';
import { LedgerProjector } from '../src/modules/ledger/ledger-projector.service';
import { QueueService } from '../src/modules/queue/queue.service';
import {
  getService,
  streamCounters,
  useTestEnvironment,
  waitFor,
  waitForLedgerToReadEvents,
} from './support/test-context';

describe('when the event stream is trimmed past the ledger cursor', () => {
  const shared = useTestEnvironment('trimmed');

  it('repairs every row from the jobs in Redis and records each repair with its evidence', async () => {
    // No ledger role yet: the stream grows past its (small) maximum length unread.
    const producer = await shared.start({
      roles: ['api', 'worker'],
      config: { diagnosticJobs: true, eventsMaxLen: 1000, workerConcurrency: 20 },
    });
    const queue = getService(producer, QueueService);

    const jobs = [];
    for (let batch = 0; batch < 4; batch++) {
      const requests = Array.from({ length: 100 }, () => ({ jobType: 'diag_noop', payload: {} }));
      jobs.push(...(await queue.enqueueMany(requests)));
    }
    const failing = await queue.enqueue('diag_fail', { times: 9 }, { attempts: 1 });

    await waitFor(
      'Redis to finish every job',
      async () => {
        const done = await shared.env.redis.zcard(`${shared.env.prefix}:diag_noop:completed`);
        const failed = await shared.env.redis.zcard(`${shared.env.prefix}:diag_fail:failed`);

        return done === jobs.length && failed === 1;
      },
      30_000,
    );
    const { entriesAdded, length } = await streamCounters(shared.env, 'diag_noop');
    expect(entriesAdded - length).toBeGreaterThan(0);

    const ledger = await shared.start({
      roles: ['ledger'],
      config: { diagnosticJobs: true, eventsMaxLen: 1000 },
    });
    const dataSource = ledger.get(DataSource);

    await waitFor(
      'every row to reach its final status',
      async () => {
        const [{ open }] = (await dataSource.query(
          `SELECT COUNT(*) AS open FROM job_queue WHERE status IN ('pending', 'processing')`,
        )) as Array<{ open: string }>;

        return Number(open) === 0;
      },
      30_000,
    );

    const rows = (await dataSource.query(
      `SELECT status, attempt_count, COUNT(*) AS n FROM job_queue GROUP BY status, attempt_count`,
    )) as Array<{ status: string; attempt_count: number; n: string }>;
    expect(rows.map((row) => [row.status, row.attempt_count, Number(row.n)]).sort()).toEqual(
      [
        ['completed', 1, jobs.length],
        ['failed', 1, 1],
      ].sort(),
    );
    expect((await queue.get(failing.id))?.errorMessage).toBe('diagnostic failure on attempt 1');

    const repairs = (await dataSource.query(
      `SELECT COUNT(*) AS n FROM job_queue_history WHERE source = 'repair' AND note LIKE '%trimmed%'`,
    )) as Array<{ n: string }>;
    expect(Number(repairs[0].n)).toBeGreaterThan(0);
    expect(getService(ledger, LedgerProjector).stats.repairs).toBeGreaterThan(0);

    // Every job's history ends in exactly one terminal transition.
    const terminal = (await dataSource.query(
      `SELECT job_id, COUNT(*) AS n FROM job_queue_history
       WHERE to_status IN ('completed', 'failed') GROUP BY job_id HAVING COUNT(*) <> 1`,
    )) as unknown[];
    expect(terminal).toEqual([]);

    await waitFor('finished jobs to leave Redis', async () => {
      const left = await shared.env.redis.zcard(`${shared.env.prefix}:diag_noop:completed`);

      return left === 0;
    });
  });
});

describe('when the ledger reads a retried job only after it failed again', () => {
  const shared = useTestEnvironment('late');

  it("records each failed attempt with its own error, not BullMQ's latest", async () => {
    // No ledger yet: BullMQ's failedReason holds only the last failure when the ledger reads.
    const producer = await shared.start({
      roles: ['api', 'worker'],
      config: { diagnosticJobs: true },
    });
    const queue = getService(producer, QueueService);
    const job = await queue.enqueue(
      'diag_fail',
      { times: 2 },
      { attempts: 3, backoff: { strategy: 'fixed', delayMs: 20 } },
    );
    await waitFor('Redis to complete the job', async () => {
      const score = await shared.env.redis.zscore(
        `${shared.env.prefix}:diag_fail:completed`,
        `job-${job.id}`,
      );

      return score !== null;
    });

    await shared.start({ roles: ['ledger'], config: { diagnosticJobs: true } });
    await waitFor('the ledger to record the completion', async () => {
      return (await queue.get(job.id))?.status === 'completed';
    });

    const retries = (await queue.history(job.id)).filter(
      (t) => t.fromStatus === 'processing' && t.toStatus === 'pending',
    );
    expect(retries.map((t) => [t.attempt, t.errorMessage])).toEqual([
      [1, 'diagnostic failure on attempt 1'],
      [2, 'diagnostic failure on attempt 2'],
    ]);
  });
});

describe('when the epoch marker goes missing but Redis kept its events', () => {
  const shared = useTestEnvironment('marker');

  it('restores the marker and records every transition from the events, repairing nothing', async () => {
    const api = await shared.start({ roles: ['api', 'ledger'], config: { diagnosticJobs: true } });
    const queue = getService(api, QueueService);
    const dataSource = api.get(DataSource);
    const jobs = await queue.enqueueMany(
      Array.from({ length: 30 }, () => ({ jobType: 'diag_noop', payload: {} })),
    );
    await waitForLedgerToReadEvents(api, shared.env, 'diag_noop');

    const markerKey = epochMarkerKey(shared.env.prefix, 'diag_noop');
    await shared.env.redis.del(markerKey);
    await shared.start({ roles: ['worker'], config: { diagnosticJobs: true } });

    await waitFor('every job to be recorded completed', async () => {
      const rows = await Promise.all(jobs.map((job) => queue.get(job.id)));

      return rows.every((row) => row?.status === 'completed');
    });
    const [{ epoch }] = (await dataSource.query(
      'SELECT epoch FROM ledger_cursor WHERE stream_key = ?',
      [`${shared.env.prefix}:diag_noop:events`],
    )) as Array<{ epoch: string }>;
    expect(await shared.env.redis.get(markerKey)).toBe(epoch);

    const bySource = (await dataSource.query(
      `SELECT source, to_status, COUNT(*) AS n FROM job_queue_history
       GROUP BY source, to_status ORDER BY source, to_status`,
    )) as Array<{ source: string; to_status: string; n: string }>;
    expect(bySource.map((row) => [row.source, row.to_status, Number(row.n)])).toEqual([
      ['enqueue', 'pending', jobs.length],
      ['event', 'completed', jobs.length],
      ['event', 'processing', jobs.length],
    ]);
    expect(getService(api, LedgerProjector).stats.repairs).toBe(0);
  });
});

describe('when the projector stopped between its commit and its clean-up', () => {
  const shared = useTestEnvironment('sweep');

  it('sweeps recorded finished jobs out of Redis and leaves unrecorded ones alone', async () => {
    const app = await shared.start({ roles: ['api', 'ledger'], config: { diagnosticJobs: true } });
    const dataSource = app.get(DataSource);
    const completedKey = `${shared.env.prefix}:diag_noop:completed`;
    await dataSource.query(
      `INSERT INTO job_queue (job_type, payload, status) VALUES ('diag_noop', '{}', 'completed')`,
    );
    const recordedId = await lastId(dataSource);
    await shared.env.redis.zadd(completedKey, 1, `job-${recordedId}`, 2, 'job-999999');
    await shared.env.redis.hset(
      `${shared.env.prefix}:diag_noop:job-${recordedId}`,
      'name',
      'diag_noop',
    );

    const { LedgerDispatcher } = await import('../src/modules/ledger/ledger-dispatcher.service');
    const removed = await getService(app, LedgerDispatcher).sweepFinishedJobs();

    expect(removed).toBe(1);
    expect(await shared.env.redis.zrange(completedKey, 0, -1)).toEqual(['job-999999']);
    expect(await shared.env.redis.exists(`${shared.env.prefix}:diag_noop:job-${recordedId}`)).toBe(
      0,
    );
  });
});

async function lastId(dataSource: DataSource): Promise<number> {
  const [{ id }] = (await dataSource.query('SELECT MAX(id) AS id FROM job_queue')) as Array<{
    id: string;
  }>;

  return Number(id);
}

describe('when another projector moved the stored cursor', () => {
  const shared = useTestEnvironment('moved');

  it('drops its batch, reads again from the stored cursor, and records nothing twice', async () => {
    const app = await shared.start({
      roles: ['api', 'ledger', 'worker'],
      config: { diagnosticJobs: true },
    });
    const queue = getService(app, QueueService);
    const projector = getService(app, LedgerProjector);
    const dataSource = app.get(DataSource);
    const enqueue = () =>
      queue.enqueueMany(
        Array.from({ length: 20 }, () => ({ jobType: 'diag_noop_fifo', payload: {} })),
      );
    const allCompleted = async (ids: number[]) => {
      const rows = await Promise.all(ids.map((id) => queue.get(id)));

      return rows.every((row) => row?.status === 'completed');
    };

    const first = await enqueue();
    await waitFor('the first jobs to be recorded completed', () =>
      allCompleted(first.map((job) => job.id)),
    );
    await waitForLedgerToReadEvents(app, shared.env, 'diag_noop_fifo');
    const readBefore = projector.stats.eventsRead;

    // What a second projector's commit looks like to this one: the stored cursor is not the one
    // it read from. Here it goes back to the start of the stream.
    await dataSource.query(
      `UPDATE ledger_cursor SET last_event_id = '0-0', entries_read = 0 WHERE stream_key = ?`,
      [`${shared.env.prefix}:diag_noop_fifo:events`],
    );
    const second = await enqueue();
    await waitFor('the second jobs to be recorded completed', () =>
      allCompleted(second.map((job) => job.id)),
    );
    await waitForLedgerToReadEvents(app, shared.env, 'diag_noop_fifo');

    // The stream was read again from its start: the old events once more, and the new ones.
    const { entriesAdded } = await streamCounters(shared.env, 'diag_noop_fifo');
    expect(projector.stats.eventsRead - readBefore).toBe(entriesAdded);
    const [{ counts }] = await dataSource.query<Array<{ counts: string }>>(
      `SELECT GROUP_CONCAT(DISTINCT n) AS counts FROM (
         SELECT COUNT(*) AS n FROM job_queue_history GROUP BY job_id) per_job`,
    );
    expect(counts).toBe('3');
    const rows = await Promise.all([...first, ...second].map((job) => queue.get(job.id)));
    expect(rows.map((row) => row?.attemptCount)).toEqual(rows.map(() => 1));
  });
});

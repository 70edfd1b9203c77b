import { getQueueToken } from '@nestjs/bullmq';
import { Queue } from 'bullmq';
import { DataSource } from 'typeorm';

import { JobEntity } from '../src/entities';
import { QueueService } from '../src/modules/queue/queue.service';
import { getService, useTestApp, waitFor, waitForFinished } from './support/test-context';

const ALL_ROLES = ['api', 'worker', 'ledger'] as const;

describe('the core path: enqueue → BullMQ → worker → ledger', () => {
  const shared = useTestApp('core', {
    roles: [...ALL_ROLES],
    config: { diagnosticJobs: true, workerConcurrency: 5 },
  });
  let queue: QueueService;
  let dataSource: DataSource;

  beforeAll(() => {
    queue = getService(shared.app, QueueService);
    dataSource = shared.app.get(DataSource);
  });

  const finished = (id: number) => waitForFinished(queue, id);

  it('records a successful job from pending to completed, with its history in order', async () => {
    const job = await queue.enqueue('diag_noop', { n: 1 });
    expect(job.status).toBe('pending');

    const row = await finished(job.id);
    expect(row).toMatchObject({ status: 'completed', attemptCount: 1, errorMessage: null });
    expect(row.worker).toBeTruthy();
    expect(row.startedAt).toBeInstanceOf(Date);
    expect(row.finishedAt).toBeInstanceOf(Date);
    expect(row.dispatchedAt).toBeInstanceOf(Date);

    const history = await queue.history(job.id);
    expect(history.map((t) => [t.fromStatus, t.toStatus, t.attempt, t.source])).toEqual([
      [null, 'pending', 0, 'enqueue'],
      ['pending', 'processing', 1, 'event'],
      ['processing', 'completed', 1, 'event'],
    ]);
    expect(history[2].occurredAt.getTime()).toBeGreaterThanOrEqual(history[1].occurredAt.getTime());
  });

  it('retries a failing job with backoff and records each failed attempt, then success', async () => {
    const job = await queue.enqueue(
      'diag_fail',
      { times: 2 },
      // A backoff well above the ledger's lag: a retry that failed again before the projector
      // read the first failure would show the later error (a known limit of the ledger).
      { attempts: 3, backoff: { strategy: 'fixed', delayMs: 500 } },
    );

    const row = await finished(job.id);
    expect(row).toMatchObject({ status: 'completed', attemptCount: 3, errorMessage: null });

    const history = await queue.history(job.id);
    expect(history.map((t) => `${t.fromStatus}->${t.toStatus}#${t.attempt}`)).toEqual([
      'null->pending#0',
      'pending->processing#1',
      'processing->pending#1',
      'pending->processing#2',
      'processing->pending#2',
      'pending->processing#3',
      'processing->completed#3',
    ]);
    expect(history[2].errorMessage).toBe('diagnostic failure on attempt 1');
    expect(history[4].errorMessage).toBe('diagnostic failure on attempt 2');
  });

  it('retries without backoff too, keeping the error of the failed attempt', async () => {
    const job = await queue.enqueue('diag_fail', { times: 1 }, { attempts: 2 });

    const row = await finished(job.id);
    expect(row).toMatchObject({ status: 'completed', attemptCount: 2 });
    const history = await queue.history(job.id);
    expect(history.map((t) => t.toStatus)).toEqual([
      'pending',
      'processing',
      'pending',
      'processing',
      'completed',
    ]);
    expect(history[2].errorMessage).toBe('diagnostic failure on attempt 1');
  });

  it('fails a job for good once its attempts are exhausted, with the last error', async () => {
    const job = await queue.enqueue('diag_fail', { times: 99 }, { attempts: 2 });

    const row = await finished(job.id);
    expect(row).toMatchObject({
      status: 'failed',
      attemptCount: 2,
      errorMessage: 'diagnostic failure on attempt 2',
    });
    const history = await queue.history(job.id);
    expect(history.at(-1)).toMatchObject({ fromStatus: 'processing', toStatus: 'failed' });
  });

  it('keeps payload values out of the recorded error, and bounds its length', async () => {
    const secret = 'card-4111-1111-1111-1111';
    const job = await queue.enqueue('diag_fail', { times: 9, echo: secret }, { attempts: 1 });

    const row = await finished(job.id);
    expect(row.errorMessage).toBe('diagnostic failure on attempt 1 (input: [redacted])');
    const long = await queue.enqueue(
      'diag_fail',
      { times: 9, echo: 'x'.repeat(5000) },
      { attempts: 1 },
    );
    expect((await finished(long.id)).errorMessage!.length).toBeLessThanOrEqual(1000);
  });

  it('fails a job at once, whatever attempts it has left, when the handler says it never can succeed', async () => {
    const job = await queue.enqueue('diag_fail', { unrecoverable: true }, { attempts: 5 });

    const row = await finished(job.id);
    expect(row).toMatchObject({
      status: 'failed',
      attemptCount: 1,
      errorMessage: 'diagnostic failure without retries',
    });
  });

  it('removes a finished job from Redis only after the ledger recorded it', async () => {
    const job = await queue.enqueue('diag_noop', {});
    await finished(job.id);

    await waitFor('the finished job to leave Redis', async () => {
      const exists = await shared.env.redis.exists(`${shared.env.prefix}:diag_noop:job-${job.id}`);

      return exists === 0;
    });
  });

  it('sends a transactional job only after the caller commits', async () => {
    const queryRunner = dataSource.createQueryRunner();
    await queryRunner.connect();
    await queryRunner.startTransaction();
    const job = await queue.enqueue(
      'diag_noop',
      { tx: 'commit' },
      { manager: queryRunner.manager },
    );

    const inRedisBeforeCommit = await shared.env.redis.exists(
      `${shared.env.prefix}:diag_noop:job-${job.id}`,
    );
    const visibleOutside = await dataSource.getRepository(JobEntity).findOneBy({ id: job.id });
    await queryRunner.commitTransaction();
    await queryRunner.release();

    expect(inRedisBeforeCommit).toBe(0);
    expect(visibleOutside).toBeNull();
    const row = await finished(job.id);
    expect(row.status).toBe('completed');
  });

  it('never sends a transactional job whose transaction rolls back', async () => {
    const before = await countRows(dataSource);
    let rolledBackId = 0;

    await expect(
      dataSource.transaction(async (manager) => {
        const job = await queue.enqueue('diag_noop', { tx: 'rollback' }, { manager });
        rolledBackId = job.id;
        throw new Error('business rule broken after enqueue');
      }),
    ).rejects.toThrow('business rule broken after enqueue');

    expect(rolledBackId).toBeGreaterThan(0);
    expect(await countRows(dataSource)).toBe(before);
    expect(
      await shared.env.redis.exists(`${shared.env.prefix}:diag_noop:job-${rolledBackId}`),
    ).toBe(0);
  });

  it('drops a job enqueued inside a savepoint that rolls back, and keeps its sibling', async () => {
    let keptId = 0;
    let droppedId = 0;

    await dataSource.transaction(async (manager) => {
      keptId = (await queue.enqueue('diag_noop', { tx: 'outer' }, { manager })).id;
      await manager
        .transaction(async (inner) => {
          droppedId = (await queue.enqueue('diag_noop', { tx: 'inner' }, { manager: inner })).id;
          throw new Error('inner rollback');
        })
        .catch(() => undefined);
    });

    expect((await finished(keptId)).status).toBe('completed');
    expect(await queue.get(droppedId)).toBeNull();
    expect(await shared.env.redis.exists(`${shared.env.prefix}:diag_noop:job-${droppedId}`)).toBe(
      0,
    );
  });

  it('enqueues a batch atomically and runs every job', async () => {
    const rows = await queue.enqueueMany([
      { jobType: 'diag_noop', payload: { i: 1 } },
      { jobType: 'diag_noop', payload: { i: 2 }, priority: 9 },
      { jobType: 'diag_sleep', payload: { ms: 5 } },
    ]);

    expect(rows.map((row) => row.jobType)).toEqual(['diag_noop', 'diag_noop', 'diag_sleep']);
    expect(rows[1].priority).toBe(9);
    for (const row of rows) {
      expect((await finished(row.id)).status).toBe('completed');
    }
  });

  it("exposes each job type's BullMQ queue for @InjectQueue, sharing the configured prefix", async () => {
    const bullQueue = shared.app.get<Queue>(getQueueToken('diag_noop'));
    const job = await queue.enqueue('diag_noop', {}, { delayMs: 60_000 });

    expect(bullQueue.name).toBe('diag_noop');
    expect(await bullQueue.getJobState(`job-${job.id}`)).toBe('delayed');
  });

  it('holds a delayed job until its time and records when it may run', async () => {
    const job = await queue.enqueue('diag_noop', {}, { delayMs: 400 });
    const expectedRunAt = job.createdAt.getTime() + 400;

    expect(job.runAt?.getTime()).toBeGreaterThanOrEqual(expectedRunAt - 5);
    const row = await finished(job.id);
    expect(row.startedAt!.getTime()).toBeGreaterThanOrEqual(expectedRunAt - 50);
  });
});

async function countRows(dataSource: DataSource): Promise<number> {
  const [{ n }] = (await dataSource.query('SELECT COUNT(*) AS n FROM job_queue')) as Array<{
    n: string;
  }>;

  return Number(n);
}

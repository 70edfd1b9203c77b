import { INestApplication } from '@nestjs/common';
import { DataSource } from 'typeorm';

import { JobEntity } from '../src/entities';
import { REDIS_DATA_LOSS_NOTE } from '../src/modules/ledger/ledger.constants';
import { LOST_FROM_REDIS_MESSAGE } from '../src/modules/ledger/ledger-reconciler';
import { LedgerProjector } from '../src/modules/ledger/ledger-projector.service';
import { QueueService } from '../src/modules/queue/queue.service';
import {
  createTestEnvironment,
  getService,
  startApp,
  TestEnvironment,
  waitFor,
  waitForLedgerToReadEvents,
} from './support/test-context';

/** The job's row once it completed, after the ledger sent it again. */
function completedAfterResend(queue: QueueService, id: number): Promise<JobEntity> {
  return waitFor(
    'the job to complete after its re-send',
    async () => {
      const current = await queue.get(id);

      return current?.status === 'completed' ? current : undefined;
    },
    30_000,
  );
}

describe('reconciliation of the ledger with Redis', () => {
  let env: TestEnvironment;
  const apps: INestApplication[] = [];

  beforeEach(async () => {
    env = await createTestEnvironment('reconcile');
  });

  afterEach(async () => {
    for (const app of apps.splice(0).reverse()) {
      await app.close();
    }
    await env?.cleanup();
  });

  const start = async (roles: Array<'api' | 'worker' | 'ledger'>, extra = {}) => {
    const app = await startApp(env, {
      roles,
      config: { diagnosticJobs: true, dispatchGraceMs: 100, reconcileIntervalMs: 300, ...extra },
    });
    apps.push(app);

    return app;
  };

  /** Closes an app before the test ends, so that `afterEach` does not close it again. */
  const stop = async (app: INestApplication) => {
    await app.close();
    apps.splice(apps.indexOf(app), 1);
  };

  it('sends again the jobs of pending rows that Redis lost, keeping priority and attempts', async () => {
    const api = await start(['api', 'ledger']);
    const queue = getService(api, QueueService);
    const jobs = await queue.enqueueMany(
      Array.from({ length: 20 }, (_, i) => ({
        jobType: 'diag_noop',
        payload: { i },
        priority: i % 3,
        attempts: 2,
      })),
    );
    await waitForLedgerToReadEvents(api, env, 'diag_noop');

    // Redis loses every job (and the queue's events) while nothing runs them.
    const keys = await env.redis.keys(`${env.prefix}:diag_noop:*`);
    await env.redis.del(...keys);

    await start(['worker']);
    await waitFor(
      'every lost job to run to completion',
      async () => {
        const rows = await Promise.all(jobs.map((job) => queue.get(job.id)));

        return rows.every((row) => row?.status === 'completed' && row.attemptCount === 1);
      },
      30_000,
    );
    expect(getService(api, LedgerProjector).stats.reconciliations).toBeGreaterThan(0);

    // Each row says that starts it may have made just before the loss could not be counted.
    const marked = (await api.get(DataSource).query(
      `SELECT COUNT(DISTINCT job_id) AS n FROM job_queue_history
          WHERE source = 'repair' AND from_status = to_status AND note = ?`,
      [REDIS_DATA_LOSS_NOTE],
    )) as Array<{ n: string }>;
    expect(Number(marked[0].n)).toBe(jobs.length);
  });

  it('returns a processing row whose job vanished to pending, records why, and runs it again', async () => {
    const api = await start(['api', 'ledger']);
    const worker = await start(['worker'], { workerLockDurationMs: 60_000, shutdownTimeoutMs: 50 });
    const queue = getService(api, QueueService);
    const job = await queue.enqueue('diag_sleep', { ms: 60_000 }, { attempts: 1 });
    await waitFor('the job to run', async () => (await queue.get(job.id))?.status === 'processing');

    await stop(worker);
    await env.redis.del(`${env.prefix}:diag_sleep:job-${job.id}`);
    await env.redis.del(`${env.prefix}:diag_sleep:active`);
    // Make the re-sent run short.
    await api
      .get(DataSource)
      .query(`UPDATE job_queue SET payload = '{"ms":10}' WHERE id = ?`, [job.id]);

    await start(['worker']);
    const row = await completedAfterResend(queue, job.id);

    expect(row.attemptCount).toBe(2);
    const history = await queue.history(job.id);
    expect(history.map((t) => `${t.fromStatus}->${t.toStatus}:${t.source}`)).toEqual([
      'null->pending:enqueue',
      'pending->processing:event',
      'processing->pending:repair',
      'pending->processing:event',
      'processing->completed:event',
    ]);
    expect(history[2].errorMessage).toBe(LOST_FROM_REDIS_MESSAGE);
    expect(history[2].note).toContain('missing from Redis');
  });

  it('numbers the attempts of a job sent again on from the starts the ledger counted', async () => {
    const api = await start(['api', 'ledger']);
    const worker = await start(['worker']);
    const queue = getService(api, QueueService);
    // Fails its first attempt only, then waits out a backoff long enough to lose it meanwhile.
    const job = await queue.enqueue(
      'diag_fail',
      { times: 1 },
      { attempts: 3, backoff: { strategy: 'fixed', delayMs: 2000 } },
    );
    await waitFor('the first attempt to fail and wait for its retry', async () => {
      const row = await queue.get(job.id);

      return row?.status === 'pending' && row.attemptCount === 1;
    });

    // Redis loses the waiting retry while no worker runs; the ledger sends the job again.
    await stop(worker);
    const jobKey = `${env.prefix}:diag_fail:job-${job.id}`;
    await env.redis.del(jobKey, `${jobKey}:logs`);
    await env.redis.zrem(`${env.prefix}:diag_fail:delayed`, `job-${job.id}`);
    await waitFor('the job to be sent again', async () => (await env.redis.exists(jobKey)) === 1);
    expect(await env.redis.hget(jobKey, 'name')).toBe('diag_fail#1');

    // Its handler sees attempt 2 of 3, so it succeeds: counted from 1 again, it would fail.
    await start(['worker']);
    const row = await completedAfterResend(queue, job.id);
    expect(row.attemptCount).toBe(2);
    const history = await queue.history(job.id);
    expect(history.map((t) => `${t.fromStatus}->${t.toStatus}:${t.attempt}`)).toEqual([
      'null->pending:0',
      'pending->processing:1',
      'processing->pending:1',
      'pending->processing:2',
      'processing->completed:2',
    ]);
    expect(history[2].errorMessage).toBe('diagnostic failure on attempt 1');
  });

  it('grows an exponential backoff on from the attempts counted before a re-send', async () => {
    const api = await start(['api', 'ledger']);
    const worker = await start(['worker']);
    const queue = getService(api, QueueService);
    const job = await queue.enqueue(
      'diag_fail',
      { times: 2 },
      { attempts: 4, backoff: { strategy: 'exponential', delayMs: 2000 } },
    );
    await waitFor('the first attempt to fail and wait 2 s for its retry', async () => {
      const row = await queue.get(job.id);

      return row?.status === 'pending' && row.attemptCount === 1;
    });

    await stop(worker);
    const jobKey = `${env.prefix}:diag_fail:job-${job.id}`;
    await env.redis.del(jobKey, `${jobKey}:logs`);
    await env.redis.zrem(`${env.prefix}:diag_fail:delayed`, `job-${job.id}`);
    await waitFor('the job to be sent again', async () => (await env.redis.exists(jobKey)) === 1);
    await start(['worker']);

    // The second attempt fails: 4 s, as if the job had never left Redis (BullMQ alone: 2 s).
    const row = await waitFor('the second attempt to fail', async () => {
      const current = await queue.get(job.id);

      return current?.status === 'pending' && current.attemptCount === 2 ? current : undefined;
    });
    expect(await env.redis.hget(jobKey, 'delay')).toBe('4000');
    const retry = (await queue.history(job.id)).at(-1);
    expect(retry).toMatchObject({ fromStatus: 'processing', toStatus: 'pending', attempt: 2 });
    const waitMs = (row.runAt?.getTime() ?? 0) - (retry?.occurredAt.getTime() ?? 0);
    expect(waitMs).toBeGreaterThan(3_500);
    expect(waitMs).toBeLessThan(4_500);
  });

  it('answers an operator request with a report of what it checked and repaired', async () => {
    // Neither a periodic reconciliation nor the dispatcher (both run once at start) may find the
    // lost job before the operator's request does.
    const api = await start(['api', 'ledger'], {
      reconcileIntervalMs: 3_600_000,
      dispatchIntervalMs: 3_600_000,
    });
    const queue = getService(api, QueueService);
    const job = await queue.enqueue('diag_noop', {});
    await waitForLedgerToReadEvents(api, env, 'diag_noop');
    await new Promise((resolve) => setTimeout(resolve, 150)); // past the 100 ms grace period
    await env.redis.del(`${env.prefix}:diag_noop:job-${job.id}`);

    const report = await getService(api, LedgerProjector).requestReconcile(10_000);

    expect(report).toMatchObject({ reason: 'requested by an operator', resent: 1 });
    expect(report.checked).toBeGreaterThanOrEqual(1);
    expect(await env.redis.exists(`${env.prefix}:diag_noop:job-${job.id}`)).toBe(1);
  });
});

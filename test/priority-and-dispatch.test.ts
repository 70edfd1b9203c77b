import { Injectable, Module } from '@nestjs/common';
import { DataSource } from 'typeorm';

import {
  DISPATCH_PAGES_PER_RUN,
  DISPATCH_SCAN_LIMIT,
} from '../src/modules/ledger/ledger.constants';
import { LedgerProjector } from '../src/modules/ledger/ledger-projector.service';
import { RedisUnavailableError } from '../src/modules/queue/queue.errors';
import { QueueService } from '../src/modules/queue/queue.service';
import { JobHandler } from '../src/modules/worker/job-handler.decorator';
import { getService, startApp, useTestEnvironment, waitFor } from './support/test-context';

async function allFinished(queue: QueueService, ids: number[]): Promise<boolean> {
  for (const id of ids) {
    const row = await queue.get(id);
    if (!row || (row.status !== 'completed' && row.status !== 'failed')) {
      return false;
    }
  }

  return true;
}

describe('priority order over a backlog', () => {
  const shared = useTestEnvironment('priority');

  it('runs a larger priority first and equal priorities in order of arrival, retries included', async () => {
    const producer = await shared.start({
      roles: ['api', 'ledger'],
      config: { diagnosticJobs: true },
    });
    const queue = getService(producer, QueueService);

    const priorities = [0, 5, 3, 5, 9, 0, 3, 9, 5, 1, 7, 0, 2, 5, 9, 4, 4, 1, 8, 6];
    const enqueued = [];
    for (const priority of priorities) {
      enqueued.push(await queue.enqueue('diag_noop', {}, { priority }));
    }
    // A job of priority 5 that fails once: its retry rejoins the priority-5 jobs at the back.
    const flaky = await queue.enqueue('diag_fail', { times: 1 }, { priority: 5, attempts: 2 });

    await shared.start({
      roles: ['worker'],
      config: { diagnosticJobs: true, workerConcurrency: 1, workerJobTypes: ['diag_noop'] },
    });
    const ids = enqueued.map((job) => job.id);
    await waitFor('the backlog to finish', () => allFinished(queue, ids));

    const started = (await producer
      .get(DataSource)
      .query(
        `SELECT job_id FROM job_queue_history WHERE to_status = 'processing' ORDER BY id`,
      )) as Array<{ job_id: string }>;
    const expected = [...enqueued]
      .sort((a, b) => b.priority - a.priority || a.id - b.id)
      .map((job) => job.id);
    expect(started.map((row) => Number(row.job_id))).toEqual(expected);
    expect(flaky.priority).toBe(5);
  });
});

describe('equal priorities with a retried job', () => {
  const shared = useTestEnvironment('retryorder');

  it('puts a retried job behind the jobs of its priority that were already waiting', async () => {
    const app = await shared.start({ roles: ['api', 'ledger'], config: { diagnosticJobs: true } });
    const queue = getService(app, QueueService);

    const flaky = await queue.enqueue('diag_fail', { times: 1 }, { priority: 5, attempts: 2 });
    const peers = [];
    for (let i = 0; i < 3; i++) {
      peers.push(await queue.enqueue('diag_fail', { times: 0 }, { priority: 5 }));
    }
    const lower = await queue.enqueue('diag_fail', { times: 0 }, { priority: 4 });

    const worker = await startApp(shared.env, {
      roles: ['worker'],
      config: { diagnosticJobs: true, workerConcurrency: 1, workerJobTypes: ['diag_fail'] },
    });
    const all = [flaky, ...peers, lower].map((job) => job.id);
    await waitFor('all jobs to finish', () => allFinished(queue, all));
    await worker.close();

    const started = (await app
      .get(DataSource)
      .query(
        `SELECT job_id FROM job_queue_history WHERE to_status = 'processing' ORDER BY id`,
      )) as Array<{ job_id: string }>;
    expect(started.map((row) => Number(row.job_id))).toEqual([
      flaky.id,
      ...peers.map((job) => job.id),
      flaky.id,
      lower.id,
    ]);
  });
});

describe('dispatch after Redis refused the first send', () => {
  const shared = useTestEnvironment('refused');

  it('commits the row, then the ledger dispatcher sends it once Redis can take it', async () => {
    // The API's Redis is unreachable; the ledger and the worker use the real one.
    const api = await shared.start({
      roles: ['api'],
      config: {
        diagnosticJobs: true,
        redisUrl: 'redis://127.0.0.1:1',
        dispatchGraceMs: 300,
        dispatchTimeoutMs: 100,
      },
    });
    const queue = getService(api, QueueService);

    const job = await queue.enqueue('diag_noop', { refused: true });
    const committed = await queue.get(job.id);
    expect(committed).toMatchObject({ status: 'pending', dispatchedAt: null });
    expect(await shared.env.redis.exists(`${shared.env.prefix}:diag_noop:job-${job.id}`)).toBe(0);

    await shared.start({
      roles: ['ledger', 'worker'],
      config: { diagnosticJobs: true, dispatchGraceMs: 300 },
    });

    const row = await waitFor('the refused job to complete', async () => {
      const current = await queue.get(job.id);

      return current?.status === 'completed' ? current : undefined;
    });
    expect(row.attemptCount).toBe(1);
    expect(row.dispatchedAt).toBeInstanceOf(Date);
    const history = await queue.history(job.id);
    expect(history.map((t) => t.toStatus)).toEqual(['pending', 'processing', 'completed']);
  });
});

@Injectable()
class DuplicateNoopHandler {
  @JobHandler('diag_noop')
  again(): null {
    return null;
  }
}

@Module({ providers: [DuplicateNoopHandler] })
class DuplicateHandlerModule {}

describe('jobs waiting in Redis past the dispatch grace period', () => {
  const shared = useTestEnvironment('waiting');

  it('are checked in turns without a write, and a row that never reached Redis behind them is sent', async () => {
    const config = { diagnosticJobs: true, dispatchGraceMs: 300 };
    // No reconciliation but the one at start, done before any job exists: only the ledger's
    // dispatcher can send the row that missed Redis.
    const ledger = await shared.start({
      roles: ['ledger'],
      config: { ...config, reconcileIntervalMs: 3_600_000 },
    });
    const projector = getService(ledger, LedgerProjector);
    await waitFor('the first reconciliation', () =>
      Promise.resolve(projector.stats.reconciliations > 0),
    );

    // More waiting jobs than one run of the dispatcher checks, and no worker to start them.
    const api = await shared.start({ roles: ['api'], config });
    const queue = getService(api, QueueService);
    const waiting = [];
    for (let sent = 0; sent < DISPATCH_SCAN_LIMIT * DISPATCH_PAGES_PER_RUN + 100; sent += 100) {
      const chunk = Array.from({ length: 100 }, (_, i) => ({
        jobType: 'diag_noop',
        payload: { i: sent + i },
      }));
      waiting.push(...(await queue.enqueueMany(chunk)));
    }
    // The newest row is committed while its producer cannot reach Redis.
    const refusing = await shared.start({
      roles: ['api'],
      config: { ...config, redisUrl: 'redis://127.0.0.1:1', dispatchTimeoutMs: 100 },
    });
    const unsent = await getService(refusing, QueueService).enqueue('diag_noop', { last: true });

    const jobKey = (id: number) => `${shared.env.prefix}:diag_noop:job-${id}`;
    expect(await shared.env.redis.exists(jobKey(unsent.id))).toBe(0);
    await waitFor('the ledger dispatcher to send the row that missed Redis', async () => {
      return (await shared.env.redis.exists(jobKey(unsent.id))) === 1;
    });

    const dataSource = ledger.get(DataSource);
    const [counts] = await dataSource.query<Array<{ pending: string; undispatched: string }>>(
      `SELECT SUM(status = 'pending') AS pending, SUM(dispatched_at IS NULL) AS undispatched
       FROM job_queue`,
    );
    expect(Number(counts.pending)).toBe(waiting.length + 1);
    expect(Number(counts.undispatched)).toBe(waiting.length + 1);
    expect(projector.stats.reconciliations).toBe(1);
    const [{ history }] = await dataSource.query<Array<{ history: string }>>(
      'SELECT COUNT(*) AS history FROM job_queue_history',
    );
    expect(Number(history)).toBe(waiting.length + 1);
  });
});

describe('handler discovery at boot', () => {
  const shared = useTestEnvironment('handlers');

  it('refuses to boot a worker when a job type has no handler, naming the type', async () => {
    await expect(
      startApp(shared.env, { roles: ['worker'], jobTypes: [{ name: 'orphan_type' }] }),
    ).rejects.toThrow('job type "orphan_type" has no @JobHandler');
  });

  it('refuses to boot a worker when a job type has two handlers, naming both', async () => {
    await expect(
      startApp(shared.env, {
        roles: ['worker'],
        config: { diagnosticJobs: true },
        imports: [DuplicateHandlerModule],
      }),
    ).rejects.toThrow(/job type "diag_noop" has 2 handlers \(.*DuplicateNoopHandler\.again/);
  });
});

describe('when Redis is down and the API is configured to refuse', () => {
  const shared = useTestEnvironment('refuse');

  it('refuses the job with RedisUnavailableError, quickly, and writes nothing', async () => {
    const api = await shared.start({
      roles: ['api'],
      config: {
        diagnosticJobs: true,
        redisUrl: 'redis://127.0.0.1:1',
        enqueueWhenRedisDown: 'refuse',
        dispatchTimeoutMs: 200,
      },
    });
    const queue = getService(api, QueueService);

    const started = performance.now();
    await expect(queue.enqueue('diag_noop', {})).rejects.toBeInstanceOf(RedisUnavailableError);
    // The second refusal comes from the remembered failure, without waiting for Redis.
    await expect(queue.enqueue('diag_noop', {})).rejects.toBeInstanceOf(RedisUnavailableError);

    expect(performance.now() - started).toBeLessThan(2000);
    const [{ n }] = (await api
      .get(DataSource)
      .query('SELECT COUNT(*) AS n FROM job_queue')) as Array<{
      n: string;
    }>;
    expect(Number(n)).toBe(0);
  });
});

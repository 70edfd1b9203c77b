import { DataSource } from 'typeorm';

import { QueueService } from '../src/modules/queue/queue.service';
import { getService, useTestApp, waitFor } from './support/test-context';

describe('idempotent enqueue', () => {
  const shared = useTestApp('idempotency', {
    roles: ['api', 'worker', 'ledger'],
    config: { diagnosticJobs: true },
  });
  let queue: QueueService;
  let dataSource: DataSource;

  beforeAll(() => {
    queue = getService(shared.app, QueueService);
    dataSource = shared.app.get(DataSource);
  });

  const rowsWithKey = async (key: string): Promise<number> => {
    const [{ n }] = (await dataSource.query(
      'SELECT COUNT(*) AS n FROM job_queue WHERE idempotency_key = ?',
      [key],
    )) as Array<{ n: string }>;

    return Number(n);
  };

  const executions = async (id: number): Promise<number> => {
    const [{ n }] = (await dataSource.query(
      `SELECT COUNT(*) AS n FROM job_queue_history WHERE job_id = ? AND to_status = 'processing'`,
      [id],
    )) as Array<{ n: string }>;

    return Number(n);
  };

  it('returns the first job for the same key and runs it once, also after it left Redis', async () => {
    const first = await queue.enqueue('diag_noop', { n: 1 }, { idempotencyKey: 'order-42' });
    await waitFor('the first job to complete and leave Redis', async () => {
      const row = await queue.get(first.id);
      const inRedis = await shared.env.redis.exists(
        `${shared.env.prefix}:diag_noop:job-${first.id}`,
      );

      return row?.status === 'completed' && inRedis === 0;
    });

    const again = await queue.enqueue('diag_noop', { n: 2 }, { idempotencyKey: 'order-42' });

    expect(again.id).toBe(first.id);
    expect(again.status).toBe('completed');
    expect(JSON.parse(again.payload)).toEqual({ n: 1 });
    expect(await rowsWithKey('order-42')).toBe(1);
    expect(await shared.env.redis.exists(`${shared.env.prefix}:diag_noop:job-${first.id}`)).toBe(0);
    expect(await executions(first.id)).toBe(1);
  });

  it('creates one job when the same key arrives concurrently', async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        queue.enqueue('diag_noop', { i }, { idempotencyKey: 'concurrent-key' }),
      ),
    );

    expect(new Set(results.map((row) => row.id)).size).toBe(1);
    expect(await rowsWithKey('concurrent-key')).toBe(1);
    await waitFor(
      'the job to complete',
      async () => (await queue.get(results[0].id))?.status === 'completed',
    );
    expect(await executions(results[0].id)).toBe(1);
  });

  it('deduplicates keys inside one batch and against earlier jobs, keeping request order', async () => {
    const earlier = await queue.enqueue('diag_noop', {}, { idempotencyKey: 'batch-a' });
    const rows = await queue.enqueueMany([
      { jobType: 'diag_noop', payload: {}, idempotencyKey: 'batch-a' },
      { jobType: 'diag_noop', payload: {}, idempotencyKey: 'batch-b' },
      { jobType: 'diag_noop', payload: {} },
      { jobType: 'diag_noop', payload: {}, idempotencyKey: 'batch-b' },
    ]);

    expect(rows[0].id).toBe(earlier.id);
    expect(rows[3].id).toBe(rows[1].id);
    expect(new Set(rows.map((row) => row.id)).size).toBe(3);
    expect(await rowsWithKey('batch-b')).toBe(1);
  });

  it('refuses a key that is empty or longer than 255 characters, writing nothing', async () => {
    await expect(queue.enqueue('diag_noop', {}, { idempotencyKey: '' })).rejects.toThrow(
      'idempotencyKey: expected a string of 1 to 255 characters',
    );
    await expect(
      queue.enqueue('diag_noop', {}, { idempotencyKey: 'k'.repeat(256) }),
    ).rejects.toThrow('idempotencyKey');
  });
});

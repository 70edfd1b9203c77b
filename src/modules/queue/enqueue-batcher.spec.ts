import { JobEntity } from '../../entities';
import { EnqueueBatcher } from './enqueue-batcher';
import { ValidatedJob } from './enqueue-request';

const job = (n: number) => ({ jobType: 'noop', payloadJson: String(n) }) as ValidatedJob;
const rowFor = (value: ValidatedJob) => ({ payload: value.payloadJson }) as JobEntity;

describe('EnqueueBatcher', () => {
  it('writes concurrent submissions in few groups and gives each caller its own row', async () => {
    const groups: number[] = [];
    const batcher = new EnqueueBatcher((jobs) => {
      groups.push(jobs.length);
      const rows = jobs.map(rowFor);

      return new Promise((resolve) => setTimeout(() => resolve({ rows, created: rows }), 5));
    });

    const rows = await Promise.all(Array.from({ length: 50 }, (_, n) => batcher.submit(job(n))));

    expect(rows.map((row) => row.payload)).toEqual(Array.from({ length: 50 }, (_, n) => String(n)));
    expect(groups.reduce((sum, size) => sum + size, 0)).toBe(50);
    expect(groups.length).toBeLessThanOrEqual(3);
  });

  it('fails every caller of a group whose write failed, and keeps serving later ones', async () => {
    const batcher = new EnqueueBatcher((jobs) => {
      const rows = jobs.map(rowFor);
      const failing = jobs.some((value) => value.payloadJson === '3');

      // Slow writes, so that jobs 3 and 4 queue up behind the first two and share a group.
      return new Promise((resolve, reject) =>
        setTimeout(
          () => (failing ? reject(new Error('ledger down')) : resolve({ rows, created: rows })),
          5,
        ),
      );
    });

    const results = await Promise.allSettled([1, 2, 3, 4].map((n) => batcher.submit(job(n))));
    const later = await batcher.submit(job(5));

    expect(results.map((result) => result.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'rejected',
    ]);
    expect(later.payload).toBe('5');
  });
});

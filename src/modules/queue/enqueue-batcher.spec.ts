import { JobEntity } from '../../entities';
import { EnqueueBatcher } from './enqueue-batcher';
import { ValidatedJob } from './enqueue-request';

const job = (n: number) => ({ jobType: 'noop', payloadJson: String(n) }) as ValidatedJob;
const rowFor = (value: ValidatedJob) => ({ payload: value.payloadJson }) as JobEntity;
const noSend = () => Promise.resolve();
const later = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Resolves once every pending promise callback has run. */
const settled = () => new Promise((resolve) => setImmediate(resolve));

describe('EnqueueBatcher', () => {
  it('writes concurrent submissions in few groups and gives each caller its own row', async () => {
    const groups: number[] = [];
    const batcher = new EnqueueBatcher((jobs) => {
      groups.push(jobs.length);
      const rows = jobs.map(rowFor);

      return new Promise((resolve) => setTimeout(() => resolve({ rows, created: rows }), 5));
    }, noSend);

    const rows = await Promise.all(Array.from({ length: 50 }, (_, n) => batcher.submit(job(n))));

    expect(rows.map((row) => row.payload)).toEqual(Array.from({ length: 50 }, (_, n) => String(n)));
    expect(groups.reduce((sum, size) => sum + size, 0)).toBe(50);
    expect(groups.length).toBeLessThanOrEqual(3);
  });

  it('fails every caller of a group whose write failed, and keeps serving later ones', async () => {
    const batcher = new EnqueueBatcher((jobs) => {
      const rows = jobs.map(rowFor);
      const failing = jobs.some((value) => value.payloadJson === '3');

      // A slow write, so that jobs 2 to 4 queue up behind the first and share a group.
      return new Promise((resolve, reject) =>
        setTimeout(
          () => (failing ? reject(new Error('ledger down')) : resolve({ rows, created: rows })),
          5,
        ),
      );
    }, noSend);

    const results = await Promise.allSettled([1, 2, 3, 4].map((n) => batcher.submit(job(n))));
    const later = await batcher.submit(job(5));

    expect(results.map((result) => result.status)).toEqual([
      'fulfilled',
      'rejected',
      'rejected',
      'rejected',
    ]);
    expect(later.payload).toBe('5');
  });

  it('waits for callers that come back together, rather than write for the first of them', async () => {
    const groups: number[] = [];
    const batcher = new EnqueueBatcher(
      async (jobs) => {
        groups.push(jobs.length);
        await later(2);
        const rows = jobs.map(rowFor);

        return { rows, created: rows };
      },
      () => later(2),
    );

    // 50 callers, each enqueuing 20 jobs one after the other: 20 rounds of the callers.
    await Promise.all(
      Array.from({ length: 50 }, async (_, caller) => {
        for (let n = 0; n < 20; n++) {
          await batcher.submit(job(caller * 100 + n));
        }
      }),
    );

    expect(groups.reduce((sum, size) => sum + size, 0)).toBe(1000);
    // About one transaction per round; writing for each caller that came back first made two.
    expect(groups.length).toBeLessThanOrEqual(24);
    expect(groups.filter((size) => size < 10).length).toBeLessThanOrEqual(2);
  });

  it('writes a small group at once when nothing is being sent, and after a hanging send soon', async () => {
    const writes: number[] = [];
    const finishSend: Array<() => void> = [];
    const batcher = new EnqueueBatcher(
      (jobs) => {
        writes.push(jobs.length);
        const rows = jobs.map(rowFor);

        return Promise.resolve({ rows, created: rows });
      },
      () => new Promise<void>((finish) => finishSend.push(finish)),
    );

    const first = batcher.submit(job(1));
    await settled();
    expect(writes).toEqual([1]);

    // The first group's send hangs: the next job waits for it, but not longer than the bound.
    const startedAt = Date.now();
    const second = batcher.submit(job(2));
    await settled();
    expect(writes).toEqual([1]);
    while (writes.length < 2 && Date.now() - startedAt < 1000) {
      await later(1);
    }
    expect(writes).toEqual([1, 1]);
    expect(Date.now() - startedAt).toBeLessThan(500);

    finishSend.forEach((finish) => finish());
    await expect(Promise.all([first, second])).resolves.toHaveLength(2);
  });

  it("writes the next group while the previous one is being sent, and sends each group's rows", async () => {
    const events: string[] = [];
    const sent: string[][] = [];
    // Each write and send waits until the test lets it finish, so the order is the batcher's.
    const finishWrite: Array<() => void> = [];
    const finishSend: Array<() => void> = [];
    const batcher = new EnqueueBatcher(
      async (jobs) => {
        events.push(`write ${jobs.length}`);
        await new Promise<void>((finish) => finishWrite.push(finish));
        const rows = jobs.map(rowFor);

        return { rows, created: rows };
      },
      async (outcome) => {
        events.push(`send ${outcome.created.length}`);
        sent.push(outcome.created.map((row) => row.payload));
        await new Promise<void>((finish) => finishSend.push(finish));
        events.push(`sent ${outcome.created.length}`);
      },
    );

    const first = batcher.submit(job(1));
    // Jobs 2 and 3 arrive while the first group is being written: they wait, as one group.
    const second = [batcher.submit(job(2)), batcher.submit(job(3))];
    expect(events).toEqual(['write 1']);

    finishWrite[0]();
    await settled();
    expect(events).toEqual(['write 1', 'write 2', 'send 1']);

    finishWrite[1]();
    await settled();
    finishSend.forEach((finish) => finish());
    await Promise.all([first, ...second]);

    expect(events).toEqual(['write 1', 'write 2', 'send 1', 'send 2', 'sent 1', 'sent 2']);
    expect(sent).toEqual([['1'], ['2', '3']]);
  });

  it('fails the callers of a group whose send threw', async () => {
    const batcher = new EnqueueBatcher(
      (jobs) => {
        const rows = jobs.map(rowFor);

        return Promise.resolve({ rows, created: rows });
      },
      () => Promise.reject(new Error('send broke')),
    );

    await expect(batcher.submit(job(1))).rejects.toThrow('send broke');
  });
});

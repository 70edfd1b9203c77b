import { MinimalJob } from 'bullmq';

import { exponentialDelay, RESUMED_EXPONENTIAL_BACKOFF, resumedBackoff } from './resumed-backoff';

function job(name: string, backoff: { type: string; delay: number; jitter?: number }): MinimalJob {
  return { name, opts: { backoff } } as unknown as MinimalJob;
}

describe('exponentialDelay', () => {
  it("doubles with each failed attempt, as BullMQ's exponential does", () => {
    expect([1, 2, 3, 4].map((failed) => exponentialDelay(100, 0, failed))).toEqual([
      100, 200, 400, 800,
    ]);
  });

  it('shortens the delay by at most the jitter share', () => {
    const random = jest.spyOn(Math, 'random');
    try {
      random.mockReturnValue(0.999999);
      expect(exponentialDelay(1000, 0.5, 2)).toBe(1000);
      random.mockReturnValue(0);
      expect(exponentialDelay(1000, 0.5, 2)).toBe(2000);
    } finally {
      random.mockRestore();
    }
  });
});

describe('resumedBackoff', () => {
  const resumed = { type: RESUMED_EXPONENTIAL_BACKOFF, delay: 100 };

  it('counts the attempts made before the job was sent again', async () => {
    // Two attempts counted before the re-send, one failed since: the third failed attempt.
    const delay = await resumedBackoff(
      1,
      RESUMED_EXPONENTIAL_BACKOFF,
      undefined,
      job('t#2', resumed),
    );

    expect(delay).toBe(400);
  });

  it('counts from BullMQ alone for a name without earlier starts', async () => {
    const delay = await resumedBackoff(
      1,
      RESUMED_EXPONENTIAL_BACKOFF,
      undefined,
      job('t', resumed),
    );

    expect(delay).toBe(100);
  });

  it('waits the plain delay for a type the ledger never sends', async () => {
    const other = job('t#3', { type: 'linear', delay: 250 });

    expect(await resumedBackoff(2, 'linear', undefined, other)).toBe(250);
  });
});

import { JobContext } from '../worker/job-context.interface';
import { UnrecoverableJobError } from '../worker/unrecoverable-job.error';
import { performSimulatedWork, SimulatedTransientError } from './simulated-work';

const SHORT_WORK = { min: 20, max: 25 };

function contextFor(attempt: number, signal = new AbortController().signal): JobContext {
  return { id: 1, jobType: 'cleanup_task', attempt, maxAttempts: 3, signal };
}

describe('performSimulatedWork', () => {
  it('works for a time within the given bounds and reports it', async () => {
    const durationMs = await performSimulatedWork({}, contextFor(1), SHORT_WORK);

    expect(durationMs).toBeGreaterThanOrEqual(SHORT_WORK.min);
    expect(durationMs).toBeLessThanOrEqual(SHORT_WORK.max);
  });

  it('fails attempts up to `simulateFailures`, retryably, and passes the next', async () => {
    const payload = { simulateFailures: 1 };

    await expect(performSimulatedWork(payload, contextFor(1), SHORT_WORK)).rejects.toThrow(
      new SimulatedTransientError({ attempt: 1, maxAttempts: 3 }),
    );
    await expect(performSimulatedWork(payload, contextFor(2), SHORT_WORK)).resolves.toEqual(
      expect.any(Number),
    );
  });

  it('treats `simulateFailures: 0` as no failure at all', async () => {
    await expect(
      performSimulatedWork({ simulateFailures: 0 }, contextFor(1), SHORT_WORK),
    ).resolves.toEqual(expect.any(Number));
  });

  it('refuses a negative `simulateFailures` as a payload that can never succeed', async () => {
    await expect(
      performSimulatedWork({ simulateFailures: -1 }, contextFor(1), SHORT_WORK),
    ).rejects.toThrow(
      new UnrecoverableJobError(
        'payload.simulateFailures: expected an integer of at least 0, got an integer below 0',
      ),
    );
  });

  it('stops early when the worker aborts the attempt', async () => {
    const shutdown = new AbortController();
    const working = performSimulatedWork({}, contextFor(1, shutdown.signal), {
      min: 10_000,
      max: 10_000,
    });
    shutdown.abort();

    await expect(working).rejects.toMatchObject({ name: 'AbortError' });
  });
});

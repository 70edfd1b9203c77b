import { JobContext } from '../worker/job-context.interface';
import { UnrecoverableJobError } from '../worker/unrecoverable-job.error';
import { CleanupTaskHandler } from './cleanup-task.handler';

function contextFor(attempt: number): JobContext {
  return {
    id: 5,
    jobType: 'cleanup_task',
    attempt,
    maxAttempts: 3,
    signal: new AbortController().signal,
  };
}

describe('CleanupTaskHandler', () => {
  const handler = new CleanupTaskHandler();

  it('returns how many records it removed', async () => {
    await expect(handler.clean({ olderThanDays: 30 }, contextFor(1))).resolves.toEqual({
      removed: expect.any(Number),
      durationMs: expect.any(Number),
    });
  });

  describe('when the payload can never succeed', () => {
    it.each([
      [{}, 'got nothing (the field is missing)'],
      [{ olderThanDays: 0 }, 'got an integer below 1'],
      [{ olderThanDays: 1.5 }, 'got a fractional number'],
      [{ olderThanDays: '30' }, 'got a string of another form'],
    ])('refuses %j without retries (%s)', async (payload, got) => {
      const cleaning = handler.clean(payload, contextFor(1));

      await expect(cleaning).rejects.toBeInstanceOf(UnrecoverableJobError);
      await expect(cleaning).rejects.toThrow(
        `payload.olderThanDays: expected an integer of at least 1, ${got}`,
      );
    });
  });
});

import { readFileSync } from 'node:fs';

import { REDACTED } from '../src/modules/worker/error-redaction';
import { SpawnedRole } from './support/spawned-process';
import { useLedgerWithSpawnedWorkers } from './support/spawned-workers';
import { waitFor } from './support/test-context';

const QUARANTINE_LOG_LINE = 'job stalled before; running it in quarantine';

describe('quarantine of jobs that stalled before', () => {
  const fixture = useLedgerWithSpawnedWorkers('quarantine');
  const worker = (name: string, variables: Record<string, string> = {}): SpawnedRole =>
    fixture.worker({
      WORKER_JOB_TYPES: 'diag_sleep,diag_crash,diag_fail',
      WORKER_NAME: name,
      ...variables,
    });
  const status = (id: number, wanted: string) => fixture.status(id, wanted, 45_000);

  /** Marks a delayed job as stalled once, as BullMQ does when a worker dies under it. */
  const makeSuspect = async (jobType: string, id: number): Promise<void> => {
    const key = `${fixture.env.prefix}:${jobType}:job-${id}`;
    await waitFor(`job ${id} in Redis`, async () => (await fixture.env.redis.exists(key)) === 1);
    await fixture.env.redis.hset(key, 'stc', '1');
  };

  const isRunning = (role: SpawnedRole) =>
    role.child.exitCode === null && role.child.signalCode === null;

  describe('when a job kills its worker process every time', () => {
    it('fails it in quarantine with the reason, and the jobs beside it complete', async () => {
      const first = worker('first');
      const innocent = await Promise.all(
        Array.from({ length: 4 }, () =>
          fixture.queue.enqueue('diag_sleep', { ms: 1000 }, { attempts: 1 }),
        ),
      );
      await Promise.all(innocent.map((job) => status(job.id, 'processing')));

      const poison = await fixture.queue.enqueue('diag_crash', {}, { attempts: 2 });
      expect((await first.exited).signal).toBe('SIGKILL');
      const second = worker('second');

      const failed = await status(poison.id, 'failed');
      expect(failed.errorMessage).toBe(
        "the handler's process ended with SIGKILL while running this job in quarantine " +
          '(the job had stalled 1 time)',
      );
      // One start killed the first worker; both attempts then ran, and died, in quarantine.
      expect(failed.attemptCount).toBe(3);
      for (const job of innocent) {
        expect(await status(job.id, 'completed')).toMatchObject({
          attemptCount: 2,
          worker: 'second',
          errorMessage: null,
        });
      }
      expect(isRunning(second)).toBe(true);
      const history = await fixture.queue.history(poison.id);
      expect(history.filter((t) => t.toStatus === 'processing')).toHaveLength(3);
    });
  });

  describe('when a suspect job does not kill its process', () => {
    it('completes a job whose handler succeeds, in quarantine', async () => {
      const role = worker('rescuer');
      const job = await fixture.queue.enqueue('diag_sleep', { ms: 10 }, { delayMs: 2000 });
      await makeSuspect('diag_sleep', job.id);

      expect(await status(job.id, 'completed')).toMatchObject({
        attemptCount: 1,
        errorMessage: null,
      });
      expect(role.output()).toContain(QUARANTINE_LOG_LINE);
      expect(isRunning(role)).toBe(true);
    });

    it('fails an unrecoverable job at once, and redacts a retried error, as in process', async () => {
      worker('strict');
      const unrecoverable = await fixture.queue.enqueue(
        'diag_fail',
        { unrecoverable: true },
        { attempts: 3, delayMs: 2000 },
      );
      const echoing = await fixture.queue.enqueue(
        'diag_fail',
        { times: 1, echo: 'card-4111-1111' },
        { attempts: 3, delayMs: 2000 },
      );
      await makeSuspect('diag_fail', unrecoverable.id);
      await makeSuspect('diag_fail', echoing.id);

      expect(await status(unrecoverable.id, 'failed')).toMatchObject({
        attemptCount: 1,
        errorMessage: 'diagnostic failure without retries',
      });
      expect(await status(echoing.id, 'completed')).toMatchObject({ attemptCount: 2 });
      const retried = (await fixture.queue.history(echoing.id)).find(
        (t) => t.fromStatus === 'processing' && t.toStatus === 'pending',
      );
      expect(retried?.errorMessage).toBe(`diagnostic failure on attempt 1 (input: ${REDACTED})`);
    });
  });

  describe('when several suspect jobs arrive at once', () => {
    it('runs them side by side, one per quarantine process', async () => {
      const role = worker('pool', { WORKER_QUARANTINE_PROCESSES: '2' });
      const jobs = await Promise.all(
        [0, 1].map(() => fixture.queue.enqueue('diag_sleep', { ms: 4000 }, { delayMs: 2000 })),
      );
      await Promise.all(jobs.map((job) => makeSuspect('diag_sleep', job.id)));

      await waitFor('two quarantine processes at once', () =>
        Promise.resolve(childrenOf(role.child.pid ?? 0).length === 2),
      );
      for (const job of jobs) {
        expect(await status(job.id, 'completed')).toMatchObject({ attemptCount: 1 });
      }
    });
  });

  describe('when the worker dies while a job runs in quarantine', () => {
    it('ends the quarantine process too, leaving no orphan', async () => {
      const role = worker('parent');
      const job = await fixture.queue.enqueue('diag_sleep', { ms: 60_000 }, { delayMs: 2000 });
      await makeSuspect('diag_sleep', job.id);
      await status(job.id, 'processing');
      const [childPid] = await waitFor('the quarantine process', () => {
        const pids = childrenOf(role.child.pid ?? 0);

        return Promise.resolve(pids.length > 0 ? pids : undefined);
      });

      role.child.kill('SIGKILL');
      await role.exited;

      await waitFor(`process ${childPid} to end`, () => Promise.resolve(!isAlive(childPid)));
    });
  });
});

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter((field) => field.length > 0)
      .map(Number);
  } catch {
    return [];
  }
}

/** A zombie has ended; only its parent has not collected it yet. */
function isAlive(pid: number): boolean {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];

    return state !== undefined && state !== 'Z';
  } catch {
    return false;
  }
}

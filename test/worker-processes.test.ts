import { STALLED_MESSAGE } from '../src/modules/ledger/transition-rules';
import { SpawnedRole } from './support/spawned-process';
import { useLedgerWithSpawnedWorkers } from './support/spawned-workers';
import { waitFor } from './support/test-context';

describe('worker processes', () => {
  const fixture = useLedgerWithSpawnedWorkers('processes');
  const worker = (variables: Record<string, string> = {}): SpawnedRole =>
    fixture.worker({ WORKER_JOB_TYPES: 'diag_sleep', ...variables });
  const status = (id: number, wanted: string) => fixture.status(id, wanted);

  it('runs a job again after its worker is killed with SIGKILL mid-job, and records both starts', async () => {
    const victim = worker({ WORKER_NAME: 'victim' });
    const job = await fixture.queue.enqueue('diag_sleep', { ms: 60_000 }, { attempts: 1 });
    await status(job.id, 'processing');

    victim.child.kill('SIGKILL');
    expect((await victim.exited).signal).toBe('SIGKILL');
    await fixture.queue.get(job.id).then((row) => expect(row?.worker).toBe('victim'));

    // The second worker finds the abandoned job once its lock expires; make its run short.
    await fixture.env.redis.hset(
      `${fixture.env.prefix}:diag_sleep:job-${job.id}`,
      'data',
      JSON.stringify({ ms: 10 }),
    );
    worker({ WORKER_NAME: 'rescuer' });
    const row = await status(job.id, 'completed');

    expect(row).toMatchObject({ attemptCount: 2, worker: 'rescuer', errorMessage: null });
    const history = await fixture.queue.history(job.id);
    expect(history.map((t) => `${t.fromStatus}->${t.toStatus}#${t.attempt}`)).toEqual([
      'null->pending#0',
      'pending->processing#1',
      'processing->pending#1',
      'pending->processing#2',
      'processing->completed#2',
    ]);
    expect(history[1].worker).toBe('victim');
    expect(history[2]).toMatchObject({ errorMessage: STALLED_MESSAGE });
    expect(history[3].worker).toBe('rescuer');
  });

  it('lets a running job finish on SIGTERM, takes no new one, then exits cleanly', async () => {
    const role = worker({
      WORKER_NAME: 'graceful',
      SHUTDOWN_TIMEOUT_MS: '10000',
      LOG_LEVEL: 'log',
    });
    const running = await fixture.queue.enqueue('diag_sleep', { ms: 1500 });
    const started = await status(running.id, 'processing');
    expect(started.worker).toBe('graceful');

    role.child.kill('SIGTERM');
    // Enqueued once the workers are paused: BullMQ's fetch that was already waiting when the
    // signal came does not look at the pause again, so a job it is woken for before the pause
    // would still be taken. Due a second later for the same reason.
    await waitFor('the worker to stop taking jobs', () =>
      Promise.resolve(role.output().includes('workers stopped taking jobs')),
    );
    const waiting = await fixture.queue.enqueue('diag_sleep', { ms: 10 }, { delayMs: 1000 });
    const exit = await role.exited;

    expect({ ...exit, output: exit.code === 0 ? '' : role.output() }).toEqual({
      code: 0,
      signal: null,
      output: '',
    });
    // Finished before the exit: Redis holds it completed, or the ledger already recorded that
    // and removed it from Redis (removal follows the commit, so read Redis first).
    const completedKey = `${fixture.env.prefix}:diag_sleep:completed`;
    const inCompletedSet =
      (await fixture.env.redis.zscore(completedKey, `job-${running.id}`)) !== null;
    const recorded = (await fixture.queue.get(running.id))?.status === 'completed';
    expect(inCompletedSet || recorded).toBe(true);
    await status(running.id, 'completed');
    expect((await fixture.queue.get(waiting.id))?.status).toBe('pending');
  });

  it('fails a job when its worker is killed more often than BullMQ allows', async () => {
    const job = await fixture.queue.enqueue('diag_sleep', { ms: 60_000 }, { attempts: 5 });
    // BullMQ's own limit of one stall; quarantine raises it by default.
    const stallLimit = { WORKER_MAX_STALLED_COUNT: '1' };

    for (let kill = 1; kill <= 2; kill++) {
      const victim = worker({ WORKER_NAME: `victim-${kill}`, ...stallLimit });
      await waitFor(
        `start #${kill}`,
        async () => {
          const row = await fixture.queue.get(job.id);

          return row?.status === 'processing' && row.attemptCount === kill;
        },
        30_000,
      );
      victim.child.kill('SIGKILL');
      await victim.exited;
    }

    worker({ WORKER_NAME: 'judge', ...stallLimit });
    const row = await status(job.id, 'failed');

    expect(row.errorMessage).toContain('stalled more than allowable limit');
    const history = await fixture.queue.history(job.id);
    expect(history.filter((t) => t.toStatus === 'processing').length).toBe(row.attemptCount);
  });
});

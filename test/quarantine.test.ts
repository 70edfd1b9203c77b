import { readFileSync } from 'node:fs';

import { INestApplication } from '@nestjs/common';

import { QueueService } from '../src/modules/queue/queue.service';
import { REDACTED } from '../src/modules/worker/error-redaction';
import { spawnRole, SpawnedRole, stopRole } from './support/spawned-process';
import {
  createTestEnvironment,
  getService,
  startApp,
  TestEnvironment,
  waitFor,
} from './support/test-context';

/** Short locks so that a killed worker's job is seen as stalled within seconds. */
const FAST_STALL = { WORKER_LOCK_DURATION_MS: '1500', WORKER_STALLED_INTERVAL_MS: '500' };
const QUARANTINE_LOG_LINE = 'job stalled before; running it in quarantine';

describe('quarantine of jobs that stalled before', () => {
  let env: TestEnvironment;
  let ledger: INestApplication;
  let queue: QueueService;
  const spawned: SpawnedRole[] = [];

  beforeAll(async () => {
    env = await createTestEnvironment('quarantine');
    ledger = await startApp(env, { roles: ['api', 'ledger'], config: { diagnosticJobs: true } });
    queue = getService(ledger, QueueService);
  });

  afterEach(async () => {
    await Promise.all(spawned.splice(0).map((role) => stopRole(role)));
  });

  afterAll(async () => {
    await ledger?.close();
    await env?.cleanup();
  });

  const worker = (name: string, extra: Record<string, string> = {}): SpawnedRole => {
    const role = spawnRole(
      env.env({
        ROLES: 'worker',
        DIAGNOSTIC_JOBS: 'true',
        WORKER_JOB_TYPES: 'diag_sleep,diag_crash,diag_fail',
        WORKER_NAME: name,
        ...FAST_STALL,
        ...extra,
      }),
    );
    spawned.push(role);

    return role;
  };

  const status = (id: number, wanted: string) =>
    waitFor(
      `job ${id} to be ${wanted}`,
      async () => {
        const row = await queue.get(id);

        return row?.status === wanted ? row : undefined;
      },
      45_000,
    );

  /** Marks a delayed job as stalled once, as BullMQ does when a worker dies under it. */
  const makeSuspect = async (jobType: string, id: number): Promise<void> => {
    const key = `${env.prefix}:${jobType}:job-${id}`;
    await waitFor(`job ${id} in Redis`, async () => (await env.redis.exists(key)) === 1);
    await env.redis.hset(key, 'stc', '1');
  };

  const isRunning = (role: SpawnedRole) =>
    role.child.exitCode === null && role.child.signalCode === null;

  describe('when a job kills its worker process every time', () => {
    it('fails it in quarantine with the reason, and the jobs beside it complete', async () => {
      const first = worker('first');
      const innocent = await Promise.all(
        Array.from({ length: 4 }, () => queue.enqueue('diag_sleep', { ms: 1000 }, { attempts: 1 })),
      );
      await Promise.all(innocent.map((job) => status(job.id, 'processing')));

      const poison = await queue.enqueue('diag_crash', {}, { attempts: 2 });
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
      const history = await queue.history(poison.id);
      expect(history.filter((t) => t.toStatus === 'processing')).toHaveLength(3);
    });
  });

  describe('when a suspect job does not kill its process', () => {
    it('completes a job whose handler succeeds, in quarantine', async () => {
      const role = worker('rescuer');
      const job = await queue.enqueue('diag_sleep', { ms: 10 }, { delayMs: 2000 });
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
      const unrecoverable = await queue.enqueue(
        'diag_fail',
        { unrecoverable: true },
        { attempts: 3, delayMs: 2000 },
      );
      const echoing = await queue.enqueue(
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
      const retried = (await queue.history(echoing.id)).find(
        (t) => t.fromStatus === 'processing' && t.toStatus === 'pending',
      );
      expect(retried?.errorMessage).toBe(`diagnostic failure on attempt 1 (input: ${REDACTED})`);
    });
  });

  describe('when the worker dies while a job runs in quarantine', () => {
    it('ends the quarantine process too, leaving no orphan', async () => {
      const role = worker('parent');
      const job = await queue.enqueue('diag_sleep', { ms: 60_000 }, { delayMs: 2000 });
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

import { INestApplication } from '@nestjs/common';

import { JobEntity } from '../../src/entities';
import { QueueService } from '../../src/modules/queue/queue.service';
import { spawnRole, SpawnedRole, stopRole } from './spawned-process';
import {
  createTestEnvironment,
  getService,
  startApp,
  TestEnvironment,
  waitFor,
} from './test-context';

/** Short locks so that a killed worker's job is seen as stalled within seconds. */
export const FAST_STALL = { WORKER_LOCK_DURATION_MS: '1500', WORKER_STALLED_INTERVAL_MS: '500' };

/** An in-process API and ledger, plus worker processes spawned from `dist` as in production. */
export interface SpawnedWorkersFixture {
  readonly env: TestEnvironment;
  readonly queue: QueueService;
  /** Starts a worker process with diagnostic jobs and fast stall detection; stopped after each test. */
  worker(variables: Record<string, string>): SpawnedRole;
  /** Waits until the ledger shows job `id` with status `wanted`, and returns its row. */
  status(id: number, wanted: string, timeoutMs?: number): Promise<JobEntity>;
}

/** Registers the describe block's hooks: one environment, workers stopped after every test. */
export function useLedgerWithSpawnedWorkers(name: string): SpawnedWorkersFixture {
  let env: TestEnvironment;
  let ledger: INestApplication;
  let queue: QueueService;
  const spawned: SpawnedRole[] = [];

  beforeAll(async () => {
    env = await createTestEnvironment(name);
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

  return {
    get env() {
      return env;
    },
    get queue() {
      return queue;
    },
    worker(variables) {
      const role = spawnRole(
        env.env({ ROLES: 'worker', DIAGNOSTIC_JOBS: 'true', ...FAST_STALL, ...variables }),
      );
      spawned.push(role);

      return role;
    },
    status: (id, wanted, timeoutMs = 30_000) =>
      waitFor(
        `job ${id} to be ${wanted}`,
        async () => {
          const row = await queue.get(id);

          return row?.status === wanted ? row : undefined;
        },
        timeoutMs,
      ),
  };
}

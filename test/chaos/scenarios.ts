import { ChaosCluster, ClusterOptions } from './chaos-cluster';

/** What a scenario did to the cluster, for the audit and the table. */
export interface ScenarioRun {
  acknowledged: number[];
  /** Enqueue requests answered 503: refused cleanly, nothing written. */
  refused: number;
  /** Slowest enqueue answer while the fault lasted, in milliseconds. */
  slowestEnqueueMs: number;
  /** When the last fault ended: convergence is measured from here. */
  faultEndedAt: number;
}

export interface Scenario {
  name: string;
  /** Runs inside `npm test` (with a small load) as well as in `npm run chaos`. */
  fast: boolean;
  cluster?: ClusterOptions;
  expectedStatus?: (jobType: string) => 'completed' | 'failed';
  run(cluster: ChaosCluster, jobs: number): Promise<ScenarioRun>;
}

const BATCH = 100;

/** Jobs that sleep 5 to 40 ms, so that faults find many of them running. */
function sleepJobs(count: number, offset = 0): unknown[] {
  return Array.from({ length: count }, (_, i) => ({
    jobType: 'diag_sleep',
    payload: { ms: 5 + ((offset + i) % 8) * 5 },
    priority: (offset + i) % 5,
    attempts: 3,
  }));
}

/** Enqueues `count` jobs in batches while `fault` runs alongside, from `faultAfter` batches on. */
async function loadWithFault(
  cluster: ChaosCluster,
  count: number,
  faultAfter: number,
  fault: () => Promise<void>,
): Promise<ScenarioRun> {
  const run: ScenarioRun = { acknowledged: [], refused: 0, slowestEnqueueMs: 0, faultEndedAt: 0 };
  let faultDone: Promise<void> | undefined;

  for (let sent = 0, batch = 0; sent < count; sent += BATCH, batch++) {
    if (batch === faultAfter) {
      faultDone = fault().then(() => void (run.faultEndedAt = Date.now()));
    }

    const answer = await cluster.enqueueBatch(sleepJobs(Math.min(BATCH, count - sent), sent));
    run.acknowledged.push(...answer.ids);
    run.refused += answer.status === 503 ? 1 : 0;
    if (faultDone && !run.faultEndedAt) {
      run.slowestEnqueueMs = Math.max(run.slowestEnqueueMs, Math.round(answer.ms));
    }
  }

  await faultDone;
  run.faultEndedAt ||= Date.now();

  return run;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitForRunningJobs(cluster: ChaosCluster): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const [{ running }] = await cluster.query<{ running: number }>(
      `SELECT COUNT(*) AS running FROM job_queue WHERE status = 'processing'`,
    );
    if (Number(running) > 0) {
      return;
    }
    await sleep(20);
  }
}

export const SCENARIOS: Scenario[] = [
  {
    name: 'baseline (no fault)',
    fast: true,
    run: (cluster, jobs) => loadWithFault(cluster, jobs, Number.MAX_SAFE_INTEGER, async () => {}),
  },
  {
    name: 'worker SIGKILL mid-job, twice',
    fast: true,
    run: (cluster, jobs) =>
      loadWithFault(cluster, jobs, 1, async () => {
        for (let round = 0; round < 2; round++) {
          await waitForRunningJobs(cluster);
          await cluster.kill('worker-1');
          await cluster.startRole('worker-1');
        }
      }),
  },
  {
    name: 'projector SIGKILL mid-batch',
    fast: true,
    run: (cluster, jobs) =>
      loadWithFault(cluster, jobs, 1, async () => {
        await waitForRunningJobs(cluster);
        await cluster.kill('ledger');
        await sleep(1000);
        await cluster.startRole('ledger');
      }),
  },
  {
    name: 'API SIGKILL between commit and dispatch',
    fast: false,
    cluster: { apiEnv: { DISPATCH_TIMEOUT_MS: '30000' } },
    run: async (cluster, jobs) => {
      const run = await loadWithFault(
        cluster,
        Math.floor(jobs / 2),
        Number.MAX_SAFE_INTEGER,
        async () => {},
      );
      // The API's Redis stops answering: its next batch commits, then hangs before the send.
      cluster.proxy.blackhole();
      const stuck = cluster.enqueueBatch(sleepJobs(BATCH, jobs));
      await waitForRows(cluster, run.acknowledged.length + BATCH);
      await cluster.kill('api');
      await stuck;
      cluster.proxy.restore();
      await cluster.startRole('api');
      const rest = await loadWithFault(
        cluster,
        jobs - Math.floor(jobs / 2),
        Number.MAX_SAFE_INTEGER,
        async () => {},
      );

      return {
        acknowledged: [...run.acknowledged, ...rest.acknowledged],
        refused: 0,
        slowestEnqueueMs: 0,
        faultEndedAt: Date.now(),
      };
    },
  },
  {
    name: 'Redis restarts empty (no persistence)',
    fast: false,
    run: (cluster, jobs) =>
      loadWithFault(cluster, jobs, 2, async () => {
        await waitForRunningJobs(cluster);
        await cluster.redis.kill();
        await cluster.redis.restart();
      }),
  },
  {
    name: 'Redis unreachable for 3 s (data kept)',
    fast: false,
    cluster: { redisPersistence: true },
    run: (cluster, jobs) =>
      loadWithFault(cluster, jobs, 2, async () => {
        await cluster.redis.stop();
        await sleep(3000);
        await cluster.redis.restart();
      }),
  },
  {
    name: 'database unreachable for 3 s',
    fast: false,
    run: async (cluster, jobs) => {
      const half = Math.floor(jobs / 2);
      const before = await loadWithFault(cluster, half, Number.MAX_SAFE_INTEGER, async () => {});
      await waitForRunningJobs(cluster);
      await cluster.db.stop();

      // While the database is away, enqueue must refuse (503) and send nothing to Redis.
      let refused = 0;
      let slowest = 0;
      for (let attempt = 0; attempt < 5; attempt++) {
        const answer = await cluster.enqueueBatch(sleepJobs(BATCH, jobs + attempt * BATCH));
        refused += answer.status === 503 ? 1 : 0;
        slowest = Math.max(slowest, Math.round(answer.ms));
        await sleep(500);
      }

      await cluster.db.restart();
      const faultEndedAt = Date.now();
      const after = await loadWithFault(
        cluster,
        jobs - half,
        Number.MAX_SAFE_INTEGER,
        async () => {},
      );

      return {
        acknowledged: [...before.acknowledged, ...after.acknowledged],
        refused,
        slowestEnqueueMs: slowest,
        faultEndedAt,
      };
    },
  },
  {
    name: 'poison jobs: handler kills its worker every time',
    fast: false,
    cluster: { superviseWorkers: true },
    expectedStatus: (jobType) => (jobType === 'diag_crash' ? 'failed' : 'completed'),
    run: async (cluster, jobs) => {
      const poison = await cluster.enqueueBatch(
        Array.from({ length: 3 }, () => ({ jobType: 'diag_crash', payload: {}, attempts: 5 })),
      );
      const run = await loadWithFault(cluster, jobs, Number.MAX_SAFE_INTEGER, async () => {});

      return { ...run, acknowledged: [...poison.ids, ...run.acknowledged] };
    },
  },
];

async function waitForRows(cluster: ChaosCluster, count: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const [{ n }] = await cluster.query<{ n: number }>('SELECT COUNT(*) AS n FROM job_queue');
    if (Number(n) >= count) {
      return;
    }
    await sleep(20);
  }
  throw new Error(`expected ${count} ledger rows within 20 s`);
}

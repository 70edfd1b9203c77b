import { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import Redis from 'ioredis';
import { Connection, createConnection } from 'mysql2/promise';

import { AppModule } from '../../src/app.module';
import { loadAppConfig } from '../../src/modules/config/app-config';
import { prepareDatabase } from '../../src/modules/database/prepare-database';
import { projectorLockName } from '../../src/modules/ledger/ledger.constants';
import { EnqueueRequest, QueueService } from '../../src/modules/queue';
import { SpawnedRole, spawnRole } from '../support/spawned-process';
import {
  BenchOptions,
  drainDeadlineMs,
  failWith,
  maxOf,
  payloadOf,
  attemptsOf,
  expectedHistoryPath,
  peakRssMiB,
  profileArgs,
  stopChild,
  writeProfileWindow,
  cpuMs,
  cpuUsPerJob,
  serverPids,
  totalCpuMs,
  rate,
  redisTimeMs,
  RoundResult,
  EnqueuePhases,
  produceInChild,
  watchDrain,
  waitForWorkers,
  enqueuePaced,
  latencySummary,
  percentile,
  projectJobType,
  RssSampler,
  WorkerCpuMeter,
  unpacedTotal,
  applyWorkerNice,
} from './bench-support';

/**
 * This project: a producer process through QueueService (roles `api`; in paced mode, this
 * process), one spawned ledger process and `BENCH_WORKERS` spawned worker processes running the
 * built app. The round
 * ends with an audit of every ledger row and its history.
 */
export async function runLedgerRound(
  options: BenchOptions,
  prefix: string,
  databaseName: string,
): Promise<RoundResult> {
  const env = processEnv(options, prefix, databaseName);
  await prepareDatabase(loadAppConfig({ ...env, ROLES: 'api' }));
  const db = await connect(options.mysqlUrl, databaseName);
  const roles: SpawnedRole[] = [];
  let app: INestApplicationContext | undefined;
  try {
    const ledger = spawnRole({ ...env, ROLES: 'ledger' }, profileArgs(options, `${prefix}-ledger`));
    roles.push(ledger);
    await waitForLedger(db, ledger, projectorLockName(databaseName, prefix));

    let enqueued: Enqueued;
    if (options.rate !== undefined) {
      // Paced: the jobs go out during the drain, from this process.
      app = await NestFactory.createApplicationContext(
        AppModule.forRoles({ config: loadAppConfig({ ...env, ROLES: 'api' }) }),
        { logger: ['error'] },
      );
      const queue = app.get(QueueService, { strict: false });
      enqueued = { total: options.jobs, paced: () => enqueuePacedThroughLedger(queue, options) };
    } else {
      enqueued = await enqueueThroughLedger(options, prefix, { ...env, ROLES: 'api' });
    }

    return await drainAndAudit(options, { env, prefix, db, roles, ledger, enqueued });
  } finally {
    const graceful = options.profileDir !== undefined;
    await Promise.all(roles.map((role) => stopChild(role.child, graceful)));
    await app?.close();
    await db.query(`DROP DATABASE IF EXISTS \`${databaseName}\``);
    await db.end();
  }
}

function processEnv(
  options: BenchOptions,
  prefix: string,
  databaseName: string,
): Record<string, string> {
  return {
    REDIS_URL: options.redisUrl,
    DATABASE_URL: `${options.mysqlUrl}/${databaseName}`,
    QUEUE_PREFIX: prefix,
    DIAGNOSTIC_JOBS: 'true',
    RUN_MIGRATIONS: 'false',
    LOG_LEVEL: 'error',
  };
}

async function connect(mysqlUrl: string, database: string): Promise<Connection> {
  const url = new URL(mysqlUrl);

  return createConnection({
    host: url.hostname,
    port: Number(url.port || 3306),
    user: decodeURIComponent(url.username) || 'root',
    password: decodeURIComponent(url.password),
    database,
  });
}

/** The ledger is ready once its projector holds the writer lock. */
async function waitForLedger(db: Connection, ledger: SpawnedRole, lock: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (ledger.child.exitCode !== null) {
      throw new Error(`the ledger process exited while starting:\n${ledger.output()}`);
    }

    const [rows] = await db.query('SELECT IS_USED_LOCK(?) AS holder', [lock]);
    if ((rows as { holder: number | null }[])[0].holder !== null) {
      return;
    }
    await sleep(50);
  }

  throw new Error(`the ledger did not take the projector lock within 30 s:\n${ledger.output()}`);
}

/** The one job every enqueue of a round sends. */
function benchJob(options: BenchOptions): EnqueueRequest {
  return {
    jobType: projectJobType(options),
    payload: payloadOf(options),
    priority: options.priority,
    attempts: attemptsOf(options),
  };
}

async function enqueueThroughLedger(
  options: BenchOptions,
  prefix: string,
  env: Record<string, string>,
): Promise<Enqueued> {
  const job = benchJob(options);
  const phases = await produceInChild(options, prefix, { side: 'project', job }, env);

  return { phases, total: unpacedTotal(options) };
}

/** What the enqueue phase measured; in paced mode, the enqueue that runs during the drain. */
interface Enqueued {
  total: number;
  phases?: EnqueuePhases;
  paced?: () => Promise<void>;
}

async function enqueuePacedThroughLedger(
  queue: QueueService,
  options: BenchOptions,
): Promise<void> {
  const job = benchJob(options);
  await enqueuePaced(options.jobs, options.rate!, (count) =>
    queue.enqueueMany(Array.from({ length: count }, () => ({ ...job }))),
  );
}

interface DrainContext {
  env: Record<string, string>;
  prefix: string;
  db: Connection;
  roles: SpawnedRole[];
  ledger: SpawnedRole;
  enqueued: Enqueued;
}

/**
 * Starts the workers (on the full backlog, or before a paced enqueue) and measures two ends: the
 * last `completed` event in Redis, and the moment every ledger row reads `completed`.
 */
async function drainAndAudit(options: BenchOptions, context: DrainContext): Promise<RoundResult> {
  const { prefix, db, roles, ledger, enqueued } = context;
  const { total } = enqueued;
  const jobType = projectJobType(options);
  const workers: SpawnedRole[] = [];
  if (enqueued.paced) {
    workers.push(...spawnWorkers(options, context));
    await waitForWorkers({ ...options, prefix, queue: jobType }, options.workers, roles);
  }

  const redis = new Redis(options.redisUrl);
  const fromMs = await redisTimeMs(redis).finally(() => redis.disconnect());
  const deadline = drainDeadlineMs(total);
  const workerPids = (): Array<number | undefined> => workers.map((role) => role.child.pid);
  const workerCpu = new WorkerCpuMeter(workerPids);
  const workerRss = new RssSampler(workerPids, total);
  const ledgerRss = new RssSampler(() => [ledger.child.pid], total);
  const watch = await watchDrain({ ...options, prefix, queue: jobType, fromMs, total }, deadline, {
    onFirstActive: () => workerCpu.markFirstJob(),
    onCompleted: (count) => {
      workerRss.onCompleted(count);
      ledgerRss.onCompleted(count);
    },
  });
  try {
    const redisPids = serverPids('redis-server');
    const mariadbPids = serverPids('mariadbd');
    const cpuBefore = {
      ledger: cpuMs(ledger.child.pid),
      redis: totalCpuMs(redisPids),
      mariadb: totalCpuMs(mariadbPids),
    };
    const processes = (): { output: () => string }[] =>
      roles.map((role) => ({ output: role.output }));
    if (enqueued.paced) {
      await enqueued.paced();
    } else {
      workers.push(...spawnWorkers(options, context));
    }
    // The ledger cannot finish before the last completion in Redis, so the probe starts then:
    // probing during the drain cost MariaDB about 23 us per job (each probe walks index entries
    // the drain has just changed), load that is the bench's, not the ledger's. The end it finds
    // is late by at most the watcher's delay in seeing the last completion (milliseconds).
    const ledgerDone = watch.drained.then(() => pollLedgerCompleted(db, total, deadline));
    // Attached now so that a failed drain does not also report an unhandled rejection.
    ledgerDone.catch(() => undefined);

    const times = await watch.drained.catch((error: Error) => failWith(error, processes()));
    const ledgerDoneAt = await ledgerDone.catch((error: Error) => failWith(error, processes()));
    const cpu = {
      workerCpuUsPerJob: workerCpu.usPerJob(total),
      ledgerCpuUsPerJob: cpuUsPerJob(cpuBefore.ledger, cpuMs(ledger.child.pid), total),
      redisCpuUsPerJob: cpuUsPerJob(cpuBefore.redis, totalCpuMs(redisPids), total),
      mariadbCpuUsPerJob: cpuUsPerJob(cpuBefore.mariadb, totalCpuMs(mariadbPids), total),
    };
    const memory = {
      workerPeakRssMiB: maxOf(workerPids().map((pid) => peakRssMiB(pid))),
      ledgerPeakRssMiB: peakRssMiB(ledger.child.pid),
      workerRssStartMiB: workerRss.start,
      workerRssEndMiB: workerRss.largest(),
      ledgerRssStartMiB: ledgerRss.start,
      ledgerRssEndMiB: ledgerRss.largest(),
    };
    writeProfileWindow(options, `${prefix}-worker`, {
      fromMs: times.firstActiveAt,
      toMs: times.lastCompletedAt,
      jobs: total,
    });
    writeProfileWindow(options, `${prefix}-ledger`, {
      fromMs: times.firstActiveAt,
      toMs: ledgerDoneAt,
      jobs: total,
    });
    await auditLedger(db, total, options.failTimes);

    return {
      ...enqueued.phases,
      drain: rate(total, times.lastCompletedAt - times.firstActiveAt),
      endToEnd: rate(total, ledgerDoneAt - times.firstActiveAt),
      ledgerLagMs: Math.max(0, ledgerDoneAt - times.lastCompletedAt),
      ...(enqueued.paced
        ? { ...latencySummary(times.latenciesMs), ...(await ledgerLagSummary(db)) }
        : {}),
      ...memory,
      ...cpu,
    };
  } finally {
    await watch.close();
  }
}

function spawnWorkers(options: BenchOptions, context: DrainContext): SpawnedRole[] {
  const workerEnv = {
    ...context.env,
    ROLES: 'worker',
    WORKER_JOB_TYPES: projectJobType(options),
    WORKER_CONCURRENCY: String(options.concurrency),
  };
  const nodeArgs = profileArgs(options, `${context.prefix}-worker`);
  const workers = Array.from({ length: options.workers }, () => spawnRole(workerEnv, nodeArgs));
  context.roles.push(...workers);
  applyWorkerNice(
    options,
    workers.map((role) => role.child.pid),
  );

  return workers;
}

/**
 * How long after its transition in Redis each start and each end reached SQL: a history row's
 * `recorded_at` (database time of its INSERT, just before the batch commits) minus its
 * `occurred_at` (the event's stream id time, Redis' clock). Both clocks are this machine's. The
 * history stores database local time for `recorded_at` and UTC for `occurred_at`; the session's
 * offset from UTC is taken out.
 */
async function ledgerLagSummary(db: Connection): Promise<Partial<RoundResult>> {
  const [rows] = await db.query(
    `SELECT to_status AS toStatus,
            TIMESTAMPDIFF(MICROSECOND, occurred_at, recorded_at)
              - TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), NOW(6)) AS lagUs
     FROM job_queue_history WHERE source = 'event'`,
  );
  const lags = { processing: [] as number[], completed: [] as number[] };
  for (const { toStatus, lagUs } of rows as { toStatus: string; lagUs: number | string }[]) {
    if (toStatus === 'processing' || toStatus === 'completed') {
      lags[toStatus].push(Number(lagUs) / 1000);
    }
  }
  const ms = (value: number | undefined): number | undefined =>
    value === undefined ? undefined : Math.round(value);

  return {
    ledgerLagStartP50Ms: ms(percentile(lags.processing, 0.5)),
    ledgerLagStartP99Ms: ms(percentile(lags.processing, 0.99)),
    ledgerLagEndP50Ms: ms(percentile(lags.completed, 0.5)),
    ledgerLagEndP99Ms: ms(percentile(lags.completed, 0.99)),
  };
}

/**
 * Resolves with the wall-clock time at which every row first read `completed`. Called once every
 * row exists, so it asks only whether an unfinished one is left: a probe of the
 * status index that stops at the first hit. (Counting the completed rows every 20 ms cost
 * MariaDB as much CPU per job as the ledger's own statements, and slowed the run it measured.)
 */
async function pollLedgerCompleted(
  db: Connection,
  total: number,
  timeoutMs: number,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [rows] = await db.query(
      `SELECT EXISTS (SELECT 1 FROM job_queue WHERE status IN ('pending', 'processing'))
         AS unfinished`,
    );
    if (Number((rows as { unfinished: number | string }[])[0].unfinished) === 0) {
      return Date.now();
    }
    await sleep(20);
  }

  const [rows] = await db.query("SELECT COUNT(*) AS n FROM job_queue WHERE status = 'completed'");
  const completed = Number((rows as { n: number | string }[])[0].n);
  throw new Error(`ledger: ${completed}/${total} rows completed after ${timeoutMs} ms`);
}

/**
 * Every row completed on attempt `failTimes + 1`, with exactly its transitions in order: the
 * start, a retry per failed attempt, the end. Throws a message with counts and a few offending
 * rows otherwise.
 */
export async function auditLedger(db: Connection, total: number, failTimes = 0): Promise<void> {
  const attempts = failTimes + 1;
  const expectedPath = expectedHistoryPath(failTimes);
  const [summary] = await db.query(
    `SELECT COUNT(*) AS jobs, SUM(status = 'completed') AS completed,
            SUM(attempt_count = ?) AS rightAttempts FROM job_queue`,
    [attempts],
  );
  const [wrongPaths] = await db.query(
    `SELECT id, path FROM (
       SELECT j.id, GROUP_CONCAT(CONCAT(COALESCE(h.from_status, 'null'), '>', h.to_status)
                                 ORDER BY h.id SEPARATOR ',') AS path
       FROM job_queue j LEFT JOIN job_queue_history h ON h.job_id = j.id GROUP BY j.id
     ) paths WHERE path IS NULL OR path <> ?`,
    [expectedPath],
  );
  const counts = (summary as Record<string, number | string | null>[])[0];
  const wrong = wrongPaths as { id: number; path: string | null }[];
  const problems = [
    Number(counts.jobs) !== total ? `${counts.jobs} rows, expected ${total}` : '',
    Number(counts.completed) !== total ? `${counts.completed} rows completed of ${total}` : '',
    Number(counts.rightAttempts) !== total
      ? `${counts.rightAttempts} rows with attempt_count = ${attempts} of ${total}`
      : '',
    wrong.length > 0
      ? `${wrong.length} jobs whose history is not ${expectedPath}, ` +
        `e.g. ${JSON.stringify(wrong.slice(0, 5))}`
      : '',
  ].filter((problem) => problem !== '');

  if (problems.length > 0) {
    throw new Error(`ledger audit failed:\n  - ${problems.join('\n  - ')}`);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

import 'reflect-metadata';

import { setTimeout as sleep } from 'node:timers/promises';

import { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DataSource, In } from 'typeorm';

import { AppModule } from '../app.module';
import { isTerminal, JobEntity, JobStatus, JobTransitionEntity } from '../entities';
import { AppConfig, loadAppConfig } from '../modules/config/app-config';
import { logLevelsFrom } from '../modules/config/log-levels';
import { prepareDatabase } from '../modules/database/prepare-database';
import { QueueService } from '../modules/queue/queue.service';
import { createRedisClient } from '../modules/queue/redis-connection';
import { SAMPLE_JOB } from '../modules/sample-jobs/sample-jobs.constants';

/** How long the jobs may take, from enqueue until the ledger shows every one finished. */
const DEADLINE_MS = 30_000;
/** How long closing the app may take before the demo gives up on a clean shutdown. */
const CLOSE_TIMEOUT_MS = 10_000;
const POLL_INTERVAL_MS = 100;
const ERROR_MESSAGE_WIDTH = 50;

interface DemoJob {
  jobType: string;
  payload: Record<string, unknown>;
  priority: number;
  expectedStatus: JobStatus;
}

/** The six sample jobs of the original design. The email fails once, then succeeds on retry. */
const DEMO_JOBS: DemoJob[] = [
  {
    jobType: SAMPLE_JOB.emailDispatch,
    payload: { to: 'user@example.com', subject: 'Welcome', simulateFailures: 1 },
    priority: 5,
    expectedStatus: 'completed',
  },
  {
    jobType: SAMPLE_JOB.dataBackup,
    payload: { database: 'users_db', target: 's3://backups/' },
    priority: 10,
    expectedStatus: 'completed',
  },
  {
    jobType: SAMPLE_JOB.reportGenerate,
    payload: { reportType: 'monthly_sales', format: 'pdf' },
    priority: 3,
    expectedStatus: 'completed',
  },
  {
    jobType: SAMPLE_JOB.dataExport,
    payload: { format: 'csv', table: 'orders' },
    priority: 7,
    expectedStatus: 'completed',
  },
  {
    jobType: SAMPLE_JOB.dataMigration,
    payload: { source: 'legacy_db', destination: 'new_db' },
    priority: 8,
    expectedStatus: 'completed',
  },
  {
    jobType: SAMPLE_JOB.cleanupTask,
    payload: { olderThanDays: 30 },
    priority: 1,
    expectedStatus: 'completed',
  },
];

/**
 * `npm run demo`: runs every role in this process, enqueues the sample jobs, waits until the
 * ledger shows each one finished, and prints the ledger rows and the email job's history.
 */
async function main(): Promise<number> {
  const started = performance.now();
  const config = demoConfig(loadAppConfig());
  await prepareDatabase(config);

  const app = await NestFactory.createApplicationContext(AppModule.forRoles({ config }), {
    logger: logLevelsFrom(config.logLevel),
  });
  app.enableShutdownHooks();

  let exitCode = 1;
  try {
    exitCode = await runDemo(app, config, started);
  } finally {
    const clean = await shutDown(app, config);
    exitCode = clean ? exitCode : 1;
  }

  return exitCode;
}

/** The configured Redis and database, with a key prefix of this run's own and every role. */
function demoConfig(config: AppConfig): AppConfig {
  return {
    ...config,
    queuePrefix: `demo-${Date.now()}`,
    roles: ['api', 'worker', 'ledger'],
    logLevel: 'warn',
  };
}

async function runDemo(
  app: INestApplicationContext,
  config: AppConfig,
  started: number,
): Promise<number> {
  console.log(describeTarget(config));

  const requests = DEMO_JOBS.map(({ jobType, payload, priority }) => ({
    jobType,
    payload,
    priority,
  }));
  const deadline = performance.now() + DEADLINE_MS;
  const enqueued = await withinDeadline(
    app.get(QueueService).enqueueMany(requests),
    deadline,
    `enqueueing did not finish within ${DEADLINE_MS / 1000} s; do Redis and the database answer?`,
  );
  const ids = enqueued.map((row) => row.id);
  const { rows, timedOut } = await waitUntilFinished(app.get(DataSource), ids, deadline);
  const emailJob = rows.find((row) => row.jobType === SAMPLE_JOB.emailDispatch);
  const history = emailJob ? await app.get(QueueService).history(emailJob.id) : [];

  console.log(`\nLedger rows (job_queue) of the ${ids.length} demo jobs:\n${jobTable(rows)}`);
  console.log(`\nHistory of the email job (job_queue_history, id ${emailJob?.id}):`);
  console.log(historyTable(history));
  console.log(`\nElapsed: ${seconds(performance.now() - started)} s`);

  const problems = timedOut ? [timeoutProblem(rows)] : unexpectedOutcomes(rows);
  for (const problem of problems) {
    console.error(`Demo failed: ${problem}`);
  }

  return problems.length === 0 ? 0 : 1;
}

/** Closes the app and removes the run's keys; reports, rather than throws, what went wrong. */
async function shutDown(app: INestApplicationContext, config: AppConfig): Promise<boolean> {
  const problems: string[] = [];
  const closeDeadline = performance.now() + CLOSE_TIMEOUT_MS;

  await withinDeadline(
    app.close(),
    closeDeadline,
    `the application did not close within ${CLOSE_TIMEOUT_MS / 1000} s`,
  ).catch((error: unknown) => problems.push(describeError(error)));
  await removeRunKeys(config).catch((error: unknown) =>
    problems.push(`could not remove the keys under ${config.queuePrefix}: ${describeError(error)}`),
  );

  for (const problem of problems) {
    console.error(`Demo: ${problem}`);
  }

  return problems.length === 0;
}

/** Settles as `work` does, or rejects with `problem` at `deadline` (a `performance.now()`). */
async function withinDeadline<T>(work: Promise<T>, deadline: number, problem: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(problem)), Math.max(0, deadline - performance.now()));
  });

  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** The run's key prefix is its own, so once the app has closed every key under it can go. */
async function removeRunKeys(config: AppConfig): Promise<void> {
  const redis = createRedisClient(config.redisUrl);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(
        cursor,
        'MATCH',
        `${config.queuePrefix}:*`,
        'COUNT',
        500,
      );
      cursor = next;
      if (keys.length > 0) {
        await redis.unlink(...keys);
      }
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/** Where the demo ran; the database password is never shown. */
function describeTarget(config: AppConfig): string {
  const redis = new URL(config.redisUrl);
  const redisTarget = `${redis.hostname}:${redis.port || 6379}`;
  const { host, port, database } = config.database;

  return (
    `Demo against Redis ${redisTarget} (key prefix ${config.queuePrefix}, removed afterwards)` +
    ` and database ${database} at ${host}:${port}`
  );
}

/** Polls the ledger until every row is completed or failed, or the deadline passes. */
async function waitUntilFinished(
  dataSource: DataSource,
  ids: number[],
  deadline: number,
): Promise<{ rows: JobEntity[]; timedOut: boolean }> {
  for (;;) {
    const rows = await dataSource.getRepository(JobEntity).find({
      where: { id: In(ids) },
      order: { id: 'ASC' },
    });
    if (rows.length === ids.length && rows.every((row) => isTerminal(row.status))) {
      return { rows, timedOut: false };
    }

    if (performance.now() >= deadline) {
      return { rows, timedOut: true };
    }

    await sleep(POLL_INTERVAL_MS);
  }
}

function timeoutProblem(rows: JobEntity[]): string {
  const unfinished = rows.filter((row) => !isTerminal(row.status));
  const listed = unfinished.map((row) => `${row.id} (${row.jobType}, ${row.status})`).join(', ');

  return `after ${DEADLINE_MS / 1000} s the ledger still shows unfinished jobs: ${listed}`;
}

function unexpectedOutcomes(rows: JobEntity[]): string[] {
  return rows.flatMap((row) => {
    const expected = DEMO_JOBS.find((job) => job.jobType === row.jobType)?.expectedStatus;

    return row.status === expected
      ? []
      : [`job ${row.id} (${row.jobType}) ended ${row.status}, expected ${expected}`];
  });
}

function jobTable(rows: JobEntity[]): string {
  return formatTable(rows, [
    { title: 'id', value: (row) => String(row.id), alignRight: true },
    { title: 'job_type', value: (row) => row.jobType },
    { title: 'status', value: (row) => row.status },
    { title: 'priority', value: (row) => String(row.priority), alignRight: true },
    { title: 'attempt_count', value: (row) => String(row.attemptCount), alignRight: true },
    { title: 'error_message', value: (row) => truncate(row.errorMessage, ERROR_MESSAGE_WIDTH) },
    { title: 'created_at', value: (row) => timestamp(row.createdAt) },
    { title: 'updated_at', value: (row) => timestamp(row.updatedAt) },
  ]);
}

function historyTable(rows: JobTransitionEntity[]): string {
  return formatTable(rows, [
    { title: 'transition', value: (row) => `${row.fromStatus ?? '(new)'} → ${row.toStatus}` },
    { title: 'attempt', value: (row) => String(row.attempt), alignRight: true },
    { title: 'error_message', value: (row) => truncate(row.errorMessage) },
    { title: 'worker', value: (row) => row.worker ?? '' },
    { title: 'occurred_at', value: (row) => timestamp(row.occurredAt) },
    { title: 'source', value: (row) => row.source },
    { title: 'note', value: (row) => row.note ?? '' },
  ]);
}

interface Column<T> {
  title: string;
  value: (row: T) => string;
  alignRight?: boolean;
}

/** A plain-text table: a header, a rule, then one line per row, columns padded to align. */
function formatTable<T>(rows: T[], columns: Column<T>[]): string {
  const cells = rows.map((row) => columns.map((column) => column.value(row)));
  const widths = columns.map((column, index) =>
    Math.max(column.title.length, ...cells.map((line) => line[index].length)),
  );
  const render = (line: string[]): string =>
    line
      .map((cell, index) =>
        columns[index].alignRight ? cell.padStart(widths[index]) : cell.padEnd(widths[index]),
      )
      .join('  ')
      .trimEnd();

  return [
    render(columns.map((column) => column.title)),
    render(widths.map((width) => '-'.repeat(width))),
    ...cells.map(render),
    rows.length === 0 ? '(no rows)' : '',
  ]
    .filter((line) => line !== '')
    .join('\n');
}

function truncate(text: string | null, width = Infinity): string {
  const oneLine = (text ?? '').replace(/\s+/g, ' ');

  return oneLine.length > width ? `${oneLine.slice(0, width - 1)}…` : oneLine;
}

function timestamp(date: Date): string {
  return date.toISOString().replace('T', ' ');
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(2);
}

/** Connection errors from the drivers can carry an empty message; their code still says why. */
function describeError(error: unknown): string {
  if (!(error instanceof Error)) {
    return String(error);
  }

  const code = (error as { code?: unknown }).code;

  return error.message || (typeof code === 'string' ? code : error.name);
}

// Exit explicitly: after a failure, connections that never opened may still be retrying.
main().then(
  (exitCode) => process.exit(exitCode),
  (error: unknown) => {
    console.error(`Demo failed: ${describeError(error)}`);
    process.exit(1);
  },
);

import { cpus, release } from 'node:os';

import Redis from 'ioredis';
import { createConnection } from 'mysql2/promise';

import { toBullPriority } from '../../src/modules/queue/queue.constants';
import { BenchOptions, projectJobType, RoundResult } from './bench-support';

export interface Machine {
  node: string;
  cpus: number;
  cpuModel: string;
  kernel: string;
  redis: string;
  mariadb: string;
}

export interface RoundPair {
  round: number;
  order: string;
  plain: RoundResult;
  project: RoundResult;
}

type Metric = keyof RoundResult;

/** Rows of the table: the metric, its label, and whether plain BullMQ has a value for it. */
const METRICS: { key: Metric; label: string; plainKey?: Metric }[] = [
  { key: 'bulkEnqueue', label: 'bulk enqueue, chunks of 1000 (jobs/s)' },
  { key: 'singleEnqueue', label: 'single enqueue, concurrent (jobs/s)' },
  { key: 'singleEnqueueP50Ms', label: 'single enqueue latency of one call, p50 (ms)' },
  { key: 'singleEnqueueP99Ms', label: 'single enqueue latency of one call, p99 (ms)' },
  { key: 'bulkEnqueueP50Ms', label: 'bulk enqueue latency of one 1000-job call, p50 (ms)' },
  { key: 'bulkEnqueueP99Ms', label: 'bulk enqueue latency of one 1000-job call, p99 (ms)' },
  { key: 'drain', label: 'drain: first active → last completed in Redis (jobs/s)' },
  {
    key: 'endToEnd',
    label: 'end to end: first active → all completed in ledger (jobs/s; plain: drain)',
    plainKey: 'drain',
  },
  { key: 'ledgerLagMs', label: 'ledger lag after the last completion (ms)' },
  { key: 'queueLatencyP50Ms', label: 'paced: job latency added → completed in Redis, p50 (ms)' },
  { key: 'queueLatencyP99Ms', label: 'paced: job latency added → completed in Redis, p99 (ms)' },
  { key: 'ledgerLagStartP50Ms', label: 'paced: ledger lag of starts, p50 (ms)' },
  { key: 'ledgerLagStartP99Ms', label: 'paced: ledger lag of starts, p99 (ms)' },
  { key: 'ledgerLagEndP50Ms', label: 'paced: ledger lag of completions, p50 (ms)' },
  { key: 'ledgerLagEndP99Ms', label: 'paced: ledger lag of completions, p99 (ms)' },
  { key: 'workerPeakRssMiB', label: 'peak RSS per worker process (MiB)' },
  { key: 'ledgerPeakRssMiB', label: 'peak RSS of the ledger process (MiB)' },
  { key: 'workerRssStartMiB', label: 'RSS of a worker process at 10% of the jobs (MiB)' },
  { key: 'workerRssEndMiB', label: 'RSS of a worker process at the end (MiB)' },
  { key: 'ledgerRssStartMiB', label: 'RSS of the ledger process at 10% of the jobs (MiB)' },
  { key: 'ledgerRssEndMiB', label: 'RSS of the ledger process at the end (MiB)' },
  { key: 'singleEnqueueCpuUsPerJob', label: 'CPU per job of the producer, single enqueue (us)' },
  { key: 'bulkEnqueueCpuUsPerJob', label: 'CPU per job of the producer, bulk enqueue (us)' },
  { key: 'workerCpuUsPerJob', label: 'CPU per job during the drain: worker processes (us)' },
  { key: 'ledgerCpuUsPerJob', label: 'CPU per job during the drain: ledger process (us)' },
  { key: 'redisCpuUsPerJob', label: 'CPU per job during the drain: Redis (us)' },
  { key: 'mariadbCpuUsPerJob', label: 'CPU per job during the drain: MariaDB (us)' },
];

export async function describeMachine(options: BenchOptions): Promise<Machine> {
  const redis = new Redis(options.redisUrl);
  const info = await redis.info('server').finally(() => redis.disconnect());
  const url = new URL(options.mysqlUrl);
  const db = await createConnection({
    host: url.hostname,
    port: Number(url.port || 3306),
    user: decodeURIComponent(url.username) || 'root',
    password: decodeURIComponent(url.password),
  });
  const [rows] = await db.query('SELECT VERSION() AS version').finally(() => db.end());

  return {
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    kernel: release(),
    redis: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown',
    mariadb: (rows as { version: string }[])[0].version,
  };
}

export function median(values: (number | undefined)[]): number | undefined {
  const known = values.filter((value): value is number => value !== undefined);
  if (known.length === 0) {
    return undefined;
  }

  const sorted = [...known].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);

  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export interface MetricSummary {
  plain?: number;
  project?: number;
  ratio?: number;
}

export function summarise(pairs: RoundPair[]): Record<string, MetricSummary> {
  const summary: Record<string, MetricSummary> = {};
  for (const { key, plainKey } of METRICS) {
    const plain = median(pairs.map((pair) => pair.plain[plainKey ?? key]));
    const project = median(pairs.map((pair) => pair.project[key]));
    const ratio =
      plain !== undefined && project !== undefined && plain > 0
        ? Math.round((project / plain) * 100) / 100
        : undefined;
    summary[key] = { plain, project, ratio };
  }

  return summary;
}

export function header(options: BenchOptions, machine: Machine): string {
  return [
    'ledger-queue benchmark: plain BullMQ against this project, same machine, alternating rounds',
    `machine: ${machine.cpus} × ${machine.cpuModel}, Linux ${machine.kernel}, Node ${machine.node}`,
    `servers: Redis ${machine.redis} at ${options.redisUrl}, MariaDB ${machine.mariadb}`,
    `load: ${describeLoad(options)}, payload ~${options.payloadBytes} B, ` +
      `${options.workers} worker process(es) × concurrency ${options.concurrency}` +
      `${options.workerNice > 0 ? ` at nice ${options.workerNice} (both sides)` : ''}, ` +
      `${describeHandler(options)}, ` +
      `${options.rounds} round(s)`,
    describeBullPath(options),
    `plain: Queue in ${producerPlace(options)}, workers = spawned node processes with a bare ` +
      'BullMQ Worker',
    `project: QueueService (roles api) in ${producerPlace(options)}, spawned ledger and worker ` +
      'processes (node dist/src/main.js)',
  ].join('\n');
}

/** Paced jobs go out from the bench process during the drain; the enqueue phases from a child. */
function producerPlace(options: BenchOptions): string {
  return options.rate === undefined
    ? 'a producer process of its own (test/bench/producer.js)'
    : 'the bench process';
}

/** Which of BullMQ's two ways to queue a job both sides took, so that like meets like. */
function describeBullPath(options: BenchOptions): string {
  const project = `project ${projectJobType(options)}`;
  if (options.priority === 0) {
    return (
      'BullMQ path (BENCH_PRIORITY=0): plain wait list, arrival order ' +
      `(${project}; plain without priority)`
    );
  }

  return (
    `BullMQ path (BENCH_PRIORITY=${options.priority}): priority ` +
    `(${project} with priority ${options.priority}; ` +
    `plain with BullMQ priority ${toBullPriority(options.priority)})`
  );
}

function describeLoad(options: BenchOptions): string {
  if (options.rate !== undefined) {
    return `paced: ${options.jobs} jobs at ${options.rate} jobs/s while workers and ledger run`;
  }

  return (
    `${options.warmupJobs} single untimed (warm-up) + ${options.singleJobs} single ` +
    `(${options.inFlight} in flight) + ${options.jobs} jobs by bulk, then drained`
  );
}

export function roundLines(pairs: RoundPair[]): string {
  const show = (result: RoundResult): string =>
    METRICS.filter(({ key }) => result[key] !== undefined)
      .map(({ key }) => `${key}=${result[key]}`)
      .join(' ');

  return pairs
    .map(
      (pair) =>
        `round ${pair.round} (${pair.order}):\n  plain   ${show(pair.plain)}\n  project ${show(pair.project)}`,
    )
    .join('\n');
}

export function table(summary: Record<string, MetricSummary>): string {
  const cell = (value: number | undefined): string =>
    value === undefined ? '—' : String(Math.round(value * 100) / 100);
  // Rows a mode does not measure (enqueue rates when paced, latencies when not) are left out.
  const measured = METRICS.filter(
    ({ key }) => summary[key].plain !== undefined || summary[key].project !== undefined,
  );
  const rows = measured.map(({ key, label }) => [
    label,
    cell(summary[key].plain),
    cell(summary[key].project),
    cell(summary[key].ratio),
  ]);
  const all = [['median of rounds', 'plain', 'project', 'project/plain'], ...rows];
  const widths = all[0].map((_, column) => Math.max(...all.map((row) => row[column].length)));
  const line = (row: string[]): string =>
    row
      .map((text, column) =>
        column === 0 ? text.padEnd(widths[0]) : text.padStart(widths[column]),
      )
      .join('  ');

  return [
    line(all[0]),
    widths.map((width) => '-'.repeat(width)).join('  '),
    ...rows.map(line),
  ].join('\n');
}

function describeHandler(options: BenchOptions): string {
  if (options.failTimes > 0) {
    return `handler fails ${options.failTimes} time(s), then succeeds (retried at once)`;
  }

  return options.jobMs > 0 ? `handler waits ${options.jobMs} ms` : 'no-op handler';
}

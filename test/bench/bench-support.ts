import { ChildProcess, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { join } from 'node:path';

import { Queue, QueueEvents } from 'bullmq';
import Redis from 'ioredis';

import { MAX_PRIORITY } from '../../src/modules/queue/queue.constants';
import { spawnScript } from '../support/spawned-process';
import { percentile } from './bench-measures';

export { percentile, rate } from './bench-measures';

/** What one invocation measures; every value comes from a `BENCH_*` variable. */
export interface BenchOptions {
  jobs: number;
  singleJobs: number;
  /**
   * Single enqueues made, untimed, before the timed ones, so that the single-enqueue figure is a
   * warm process's rate on both sides; these jobs are drained and audited with the others.
   */
  warmupJobs: number;
  inFlight: number;
  concurrency: number;
  workers: number;
  rounds: number;
  payloadBytes: number;
  /** Niceness of every spawned worker process, plain and project alike (0: the default). */
  workerNice: number;
  /** How long each job's handler waits, in ms; 0 runs the no-op handler. */
  jobMs: number;
  /**
   * How many attempts of each job fail before one succeeds; retried at once, without backoff.
   * 0: no job fails. Not combined with `jobMs`: the failing handler does not wait.
   */
  failTimes: number;
  /**
   * 0: both sides take BullMQ's plain wait list (the project's arrival-order `_fifo` types, plain
   * jobs without a priority). N: both take its priority path (the project's prioritized types with
   * priority N, plain jobs with the BullMQ priority N maps to).
   */
  priority: number;
  /**
   * Jobs per second for the paced mode: workers and ledger run first, then `jobs` arrive at this
   * rate (no single-enqueue phase), and latencies are measured. Unset: enqueue all, then drain.
   */
  rate: number | undefined;
  /** Where worker and ledger processes write V8 CPU profiles of the drain; none if unset. */
  profileDir: string | undefined;
  redisUrl: string;
  mysqlUrl: string;
}

export const BULK_CHUNK = 1000;

/** One round's numbers; throughputs in jobs per second, memory in MiB. */
export interface RoundResult extends Partial<EnqueuePhases> {
  drain: number;
  /** Paced mode: from a job's `added` to its `completed` event, both stamped by Redis. */
  queueLatencyP50Ms?: number;
  queueLatencyP99Ms?: number;
  /** Paced mode: from an event's stream id time to its history row's `recorded_at`. */
  ledgerLagStartP50Ms?: number;
  ledgerLagStartP99Ms?: number;
  ledgerLagEndP50Ms?: number;
  ledgerLagEndP99Ms?: number;
  /** Resident memory once a tenth of the jobs completed, and at the end of the drain. */
  workerRssStartMiB?: number;
  workerRssEndMiB?: number;
  ledgerRssStartMiB?: number;
  ledgerRssEndMiB?: number;
  endToEnd?: number;
  ledgerLagMs?: number;
  workerPeakRssMiB?: number;
  ledgerPeakRssMiB?: number;
  /** CPU time per job during the drain, in microseconds, by process kind. */
  workerCpuUsPerJob?: number;
  ledgerCpuUsPerJob?: number;
  redisCpuUsPerJob?: number;
  mariadbCpuUsPerJob?: number;
}

/** How long a drain may take before the run fails: generous, a slow box is not a failure. */
export function drainDeadlineMs(total: number): number {
  return Math.max(120_000, total * 5);
}

export function readBenchOptions(env: NodeJS.ProcessEnv = process.env): BenchOptions {
  return {
    jobs: positive(env, 'BENCH_JOBS', 20_000),
    singleJobs: positive(env, 'BENCH_SINGLE_JOBS', 2_000),
    warmupJobs: nonNegative(env, 'BENCH_WARMUP_JOBS', 5_000),
    inFlight: positive(env, 'BENCH_IN_FLIGHT', 50),
    concurrency: positive(env, 'BENCH_CONCURRENCY', 50),
    workers: positive(env, 'BENCH_WORKERS', 1),
    rounds: positive(env, 'BENCH_ROUNDS', 3),
    payloadBytes: positive(env, 'BENCH_PAYLOAD_BYTES', 50),
    workerNice: workerNiceOf(env),
    jobMs: nonNegative(env, 'BENCH_JOB_MS', 0),
    failTimes: failTimesOf(env),
    priority: priorityOf(env),
    profileDir: env.BENCH_PROFILE_DIR || undefined,
    rate: env.BENCH_RATE ? positive(env, 'BENCH_RATE', 1000) : undefined,
    redisUrl: env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
    mysqlUrl: env.BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306',
  };
}

const MAX_FAIL_TIMES = 10;

function failTimesOf(env: NodeJS.ProcessEnv): number {
  const times = nonNegative(env, 'BENCH_FAIL_TIMES', 0);
  if (times > MAX_FAIL_TIMES) {
    throw new Error(`BENCH_FAIL_TIMES=${times}: expected an integer from 0 to ${MAX_FAIL_TIMES}`);
  }
  if (times > 0 && nonNegative(env, 'BENCH_JOB_MS', 0) > 0) {
    throw new Error(
      'BENCH_FAIL_TIMES and BENCH_JOB_MS cannot both be set: failing jobs do not wait',
    );
  }

  return times;
}

function priorityOf(env: NodeJS.ProcessEnv): number {
  const priority = nonNegative(env, 'BENCH_PRIORITY', 0);
  if (priority > MAX_PRIORITY) {
    throw new Error(`BENCH_PRIORITY=${priority}: expected an integer from 0 to ${MAX_PRIORITY}`);
  }

  return priority;
}

function workerNiceOf(env: NodeJS.ProcessEnv): number {
  const nice = nonNegative(env, 'BENCH_WORKER_NICE', 0);
  if (nice > 19) {
    throw new Error(`BENCH_WORKER_NICE=${nice}: expected an integer from 0 to 19`);
  }

  return nice;
}

/** Every job a round enqueues without pacing: warm-up, timed single, and bulk. */
export function unpacedTotal(options: BenchOptions): number {
  return options.warmupJobs + options.singleJobs + options.jobs;
}

/**
 * Lowers the scheduling priority of spawned worker processes. On a host where workers and the
 * ledger share cores, this is how a deployment keeps the ledger close behind the workers.
 */
export function applyWorkerNice(options: BenchOptions, pids: Array<number | undefined>): void {
  if (options.workerNice === 0) {
    return;
  }

  for (const pid of pids) {
    if (pid !== undefined) {
      setPriority(pid, options.workerNice);
    }
  }
}

/**
 * The diagnostic job type the project's side runs: no-op, waiting `BENCH_JOB_MS`, or failing
 * `BENCH_FAIL_TIMES` times; in arrival order unless `BENCH_PRIORITY` asks for the priority path.
 */
export function projectJobType(options: BenchOptions): string {
  const base = options.failTimes > 0 ? 'diag_fail' : options.jobMs > 0 ? 'diag_sleep' : 'diag_noop';

  return options.priority > 0 ? base : `${base}_fifo`;
}

function positive(env: NodeJS.ProcessEnv, key: string, fallback: number): number {
  return integerAtLeast(env, key, fallback, 1);
}

function nonNegative(env: NodeJS.ProcessEnv, key: string, fallback: number): number {
  return integerAtLeast(env, key, fallback, 0);
}

function integerAtLeast(
  env: NodeJS.ProcessEnv,
  key: string,
  fallback: number,
  min: number,
): number {
  const raw = env[key];
  if (raw === undefined || raw === '') {
    return fallback;
  }

  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min) {
    const kind = min === 1 ? 'a positive integer' : `an integer of at least ${min}`;
    throw new Error(`${key}=${raw}: expected ${kind}, for example ${fallback}`);
  }

  return value;
}

/**
 * A JSON payload whose serialised form is about `bytes` long; it also tells `diag_sleep` how
 * long to wait, or `diag_fail` (and the plain worker) how many attempts to fail.
 */
export function payloadOf(options: BenchOptions): { pad: string; ms?: number; times?: number } {
  const behaviour = {
    ...(options.jobMs > 0 ? { ms: options.jobMs } : {}),
    ...(options.failTimes > 0 ? { times: options.failTimes } : {}),
  };
  const fixed = JSON.stringify({ pad: '', ...behaviour }).length;

  return { pad: 'x'.repeat(Math.max(0, options.payloadBytes - fixed)), ...behaviour };
}

/** Attempts per job on both sides: one more than the failures asked for. */
export function attemptsOf(options: BenchOptions): number {
  return options.failTimes + 1;
}

/** Every job's history in the ledger: its start, one retry per failure, its end. */
export function expectedHistoryPath(failTimes: number): string {
  const retry = 'pending>processing,processing>pending,';

  return `null>pending,${retry.repeat(failTimes)}pending>processing,processing>completed`;
}

/** What the enqueue phases measured; latencies are those of each call, in milliseconds. */
export interface EnqueuePhases {
  bulkEnqueue: number;
  singleEnqueue: number;
  singleEnqueueP50Ms: number | undefined;
  singleEnqueueP99Ms: number | undefined;
  bulkEnqueueP50Ms: number | undefined;
  bulkEnqueueP99Ms: number | undefined;
  /** CPU time of the producer process per job, in microseconds. */
  singleEnqueueCpuUsPerJob: number;
  bulkEnqueueCpuUsPerJob: number;
}

const PRODUCER_SCRIPT = join(__dirname, 'producer.js');

/** What one side's producer sends: its queue (plain) or job type (project), and one job. */
export interface ProducerSpec {
  side: 'plain' | 'project';
  queue?: string;
  /** The plain side's event stream length (the project's comes from its configuration). */
  eventsMaxLen?: number;
  /** Sent as JSON: the plain side's `{ data, opts }`, the project's enqueue request. */
  job: object;
}

/**
 * Runs the enqueue phases in a producer process of their own (`producer.js`), the same way for
 * both sides: untimed warm-up singles, timed singles with `inFlight` calls at once, then `jobs`
 * jobs in sequential chunks of `BULK_CHUNK`, each call timed for the latencies.
 */
export async function produceInChild(
  options: BenchOptions,
  prefix: string,
  spec: ProducerSpec,
  env: Record<string, string> = {},
): Promise<EnqueuePhases> {
  const producerSpec = {
    ...spec,
    redisUrl: options.redisUrl,
    prefix,
    warmupJobs: options.warmupJobs,
    singleJobs: options.singleJobs,
    jobs: options.jobs,
    inFlight: options.inFlight,
    bulkChunk: BULK_CHUNK,
  };
  const profileLabel = `${prefix}-producer`;
  const { child, output } = spawnScript(
    PRODUCER_SCRIPT,
    { ...env, BENCH_PRODUCER: JSON.stringify(producerSpec) },
    profileArgs(options, profileLabel),
  );
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  const result = taggedLine(output(), 'BENCH_RESULT');
  if (code !== 0 || !result) {
    throw new Error(`the ${spec.side} producer failed (exit ${code}):\n${output()}`);
  }

  // The producer's profile is summarised over its timed single enqueues.
  const singleWindow = taggedLine(output(), 'BENCH_SINGLE_WINDOW');
  if (singleWindow) {
    writeProfileWindow(options, profileLabel, JSON.parse(singleWindow) as ProfileWindow);
  }

  return JSON.parse(result) as EnqueuePhases;
}

/** The JSON after `<tag> ` on the first line of a child's output that starts with it. */
function taggedLine(output: string, tag: string): string | undefined {
  const line = output.split('\n').find((text) => text.startsWith(`${tag} `));

  return line?.slice(tag.length + 1);
}

export async function redisTimeMs(redis: Redis): Promise<number> {
  const [seconds, micros] = await redis.time();

  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

/** When the first job of a drain became active and the last one completed, in Redis' clock. */
export interface DrainTimes {
  firstActiveAt: number;
  lastCompletedAt: number;
  /** `completed` minus `added` time of each job whose `added` event was seen. */
  latenciesMs: number[];
}

/** What a drain watcher reports on the way. */
export interface DrainHooks {
  onFirstActive?: () => void;
  /** After each distinct completion, with the count so far. */
  onCompleted?: (completed: number) => void;
}

/**
 * Follows a queue's event stream from `fromMs` until `total` distinct jobs completed. The times
 * come from the stream entry ids, which Redis stamps when the transition happens, so a reader
 * that falls behind does not stretch the measurement.
 */
export async function watchDrain(
  options: { redisUrl: string; prefix: string; queue: string; fromMs: number; total: number },
  deadlineMs: number,
  hooks: DrainHooks = {},
): Promise<{ drained: Promise<DrainTimes>; close: () => Promise<void> }> {
  const events = new QueueEvents(options.queue, {
    connection: { url: options.redisUrl, maxRetriesPerRequest: null },
    prefix: options.prefix,
    lastEventId: `${options.fromMs}-0`,
  });
  await events.waitUntilReady();

  const completed = new Set<string>();
  const addedAt = new Map<string, number>();
  const latenciesMs: number[] = [];
  let firstActiveAt: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  const drained = new Promise<DrainTimes>((resolve, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`drain of ${options.queue}: ${completed.size}/${options.total} completed`));
    }, deadlineMs);
    events.on('added', ({ jobId }, id) => addedAt.set(jobId, streamIdMs(id)));
    events.on('active', (_args, id) => {
      if (firstActiveAt === undefined) {
        firstActiveAt = streamIdMs(id);
        hooks.onFirstActive?.();
      }
    });
    events.on('completed', ({ jobId }, id) => {
      if (completed.has(jobId)) {
        return;
      }

      completed.add(jobId);
      const added = addedAt.get(jobId);
      if (added !== undefined) {
        latenciesMs.push(streamIdMs(id) - added);
        addedAt.delete(jobId);
      }
      hooks.onCompleted?.(completed.size);
      if (completed.size >= options.total) {
        resolve({
          firstActiveAt: firstActiveAt ?? streamIdMs(id),
          lastCompletedAt: streamIdMs(id),
          latenciesMs,
        });
      }
    });
  });
  drained.catch(() => undefined);

  return {
    drained,
    close: async () => {
      clearTimeout(timer);
      await events.close();
    },
  };
}

function streamIdMs(id: string): number {
  return Number(id.split('-')[0]);
}

/** The peak resident set of a live process in MiB (Linux only; `undefined` elsewhere). */
export function peakRssMiB(pid: number | undefined): number | undefined {
  return procStatusMiB(pid, 'VmHWM');
}

/** The resident set of a live process now, in MiB (Linux only; `undefined` elsewhere). */
export function rssMiB(pid: number | undefined): number | undefined {
  return procStatusMiB(pid, 'VmRSS');
}

function procStatusMiB(pid: number | undefined, field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status);

    return match ? Math.round(Number(match[1]) / 1024) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Samples the resident memory of some processes once a tenth of the jobs completed (after the
 * warm-up) and again at the end, to show whether memory stays flat over a long run.
 */
export class RssSampler {
  start: number | undefined;

  constructor(
    private readonly pids: () => Array<number | undefined>,
    private readonly total: number,
  ) {}

  onCompleted(completed: number): void {
    if (this.start === undefined && completed >= Math.ceil(this.total / 10)) {
      this.start = this.largest();
    }
  }

  largest(): number | undefined {
    return maxOf(this.pids().map((pid) => rssMiB(pid)));
  }
}

/** p50 and p99 of the `added` → `completed` latencies of a paced run. */
export function latencySummary(latenciesMs: number[]): Partial<RoundResult> {
  return {
    queueLatencyP50Ms: percentile(latenciesMs, 0.5),
    queueLatencyP99Ms: percentile(latenciesMs, 0.99),
  };
}

/**
 * Sends `total` jobs at `perSecond`, in ticks of 50 ms, through `send` (at most `BULK_CHUNK`
 * per call). A tick that falls behind is made up by the next ones.
 */
export async function enqueuePaced(
  total: number,
  perSecond: number,
  send: (count: number) => Promise<unknown>,
): Promise<void> {
  const started = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) * perSecond) / 1000));
    while (sent < due) {
      const count = Math.min(BULK_CHUNK, due - sent);
      await send(count);
      sent += count;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Resolves once `count` workers of a queue are connected to Redis, or fails after 60 s. */
export async function waitForWorkers(
  options: { redisUrl: string; prefix: string; queue: string },
  count: number,
  children: { output: () => string }[],
): Promise<void> {
  const queue = new Queue(options.queue, {
    connection: { url: options.redisUrl, maxRetriesPerRequest: null },
    prefix: options.prefix,
  });
  try {
    const deadline = Date.now() + 60_000;
    while ((await queue.getWorkersCount()) < count) {
      if (Date.now() > deadline) {
        failWith(new Error(`${count} worker(s) of ${options.queue} not ready in 60 s`), children);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await queue.close();
  }
}

export async function deleteKeys(redis: Redis, pattern: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) {
      deleted += await redis.del(...keys);
    }
  } while (cursor !== '0');

  return deleted;
}

/** Rethrows a drain failure with the last output of the processes involved. */
export function failWith(error: Error, children: { output: () => string }[]): never {
  const outputs = children.map((child) => child.output().slice(-2000)).join('\n---\n');

  throw new Error(`${error.message}\nprocess output:\n${outputs}`);
}

export function maxOf(values: (number | undefined)[]): number | undefined {
  const known = values.filter((value): value is number => value !== undefined);

  return known.length > 0 ? Math.max(...known) : undefined;
}

/** User plus system CPU time a live process has used, in milliseconds (Linux only). */
export function cpuMs(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may itself hold spaces: utime and stime are 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');

    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

/** Pids of the local servers the bench talks to, for their share of the CPU. */
export function serverPids(name: 'redis-server' | 'mariadbd'): number[] {
  try {
    return execFileSync('pidof', [name], { encoding: 'utf8' }).trim().split(/\s+/).map(Number);
  } catch {
    return [];
  }
}

/**
 * CPU time of worker processes from their first job on: a process's start-up (a Nest
 * application's takes over a second of CPU) is not part of the cost of a job.
 */
export class WorkerCpuMeter {
  private atFirstJob: number | undefined;

  constructor(private readonly pids: () => Array<number | undefined>) {}

  /** Call when the first job becomes active. */
  markFirstJob(): void {
    this.atFirstJob = totalCpuMs(this.pids());
  }

  usPerJob(jobs: number): number {
    return cpuUsPerJob(this.atFirstJob ?? 0, totalCpuMs(this.pids()), jobs);
  }
}

/** CPU used by `pids` between two readings, per job, in microseconds. */
export function cpuUsPerJob(before: number, after: number, jobs: number): number {
  return Math.round(((after - before) * 1000) / jobs);
}

export function totalCpuMs(pids: Array<number | undefined>): number {
  return pids.reduce<number>((sum, pid) => sum + cpuMs(pid), 0);
}

/**
 * Node options that make a child process write a V8 CPU profile into `<profileDir>/<label>` when
 * it exits; none unless `BENCH_PROFILE_DIR` is set. (Node refuses `--cpu-prof` in NODE_OPTIONS.)
 */
export function profileArgs(options: BenchOptions, label: string): string[] {
  if (!options.profileDir) {
    return [];
  }

  const directory = join(options.profileDir, label);
  mkdirSync(directory, { recursive: true });

  return ['--cpu-prof', `--cpu-prof-dir=${directory}`];
}

/** Wall-clock ends of a measured phase and the jobs it handled. */
export interface ProfileWindow {
  fromMs: number;
  toMs: number;
  jobs: number;
}

/**
 * Records which part of a profile belongs to the measured phase (the drain, or the producer's
 * timed singles). V8 stamps profile samples with the system's monotonic clock; the phase's ends
 * are wall-clock times, converted here.
 */
export function writeProfileWindow(
  options: BenchOptions,
  label: string,
  window: ProfileWindow,
): void {
  if (!options.profileDir) {
    return;
  }

  const monotonicMinusWallUs = Number(process.hrtime.bigint() / 1000n) - Date.now() * 1000;
  const toMonotonicUs = (wallMs: number): number => wallMs * 1000 + monotonicMinusWallUs;
  writeFileSync(
    join(options.profileDir, label, 'window.json'),
    JSON.stringify({
      fromUs: toMonotonicUs(window.fromMs),
      toUs: toMonotonicUs(window.toMs),
      jobs: window.jobs,
    }),
  );
}

/**
 * Stops a child: at once with SIGKILL, or, when profiling, with SIGTERM so that it can write its
 * profile, and SIGKILL only if it has not exited within 20 s.
 */
export async function stopChild(child: ChildProcess, graceful: boolean): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return;
  }

  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(graceful ? 'SIGTERM' : 'SIGKILL');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceful ? 20_000 : 0);
  await exited;
  clearTimeout(timer);
}

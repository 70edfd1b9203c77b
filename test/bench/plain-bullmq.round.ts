import { join } from 'node:path';

import { JobsOptions, Queue } from 'bullmq';
import Redis from 'ioredis';

import { DEFAULT_EVENTS_MAX_LEN, toBullPriority } from '../../src/modules/queue/queue.constants';

import {
  BenchOptions,
  drainDeadlineMs,
  failWith,
  maxOf,
  payloadOf,
  attemptsOf,
  peakRssMiB,
  profileArgs,
  cpuUsPerJob,
  serverPids,
  totalCpuMs,
  rate,
  redisTimeMs,
  RoundResult,
  EnqueuePhases,
  produceInChild,
  stopChild,
  watchDrain,
  waitForWorkers,
  enqueuePaced,
  latencySummary,
  RssSampler,
  WorkerCpuMeter,
  writeProfileWindow,
  unpacedTotal,
  applyWorkerNice,
} from './bench-support';
import { spawnScript, SpawnedScript } from '../support/spawned-process';

const QUEUE = 'plain_noop';
const WORKER_SCRIPT = join(__dirname, 'plain-worker.js');

/**
 * Plain BullMQ: a producer process with a Queue (in paced mode, this process), `BENCH_WORKERS`
 * spawned worker processes with a no-op processor. Same event stream length as the project's
 * default, so the stream is trimmed alike.
 */
export async function runPlainRound(options: BenchOptions, prefix: string): Promise<RoundResult> {
  const queue = new Queue(QUEUE, {
    connection: { url: options.redisUrl, maxRetriesPerRequest: null },
    prefix,
    streams: { events: { maxLen: DEFAULT_EVENTS_MAX_LEN } },
  });
  const redis = new Redis(options.redisUrl);
  const children: SpawnedScript[] = [];
  try {
    const paced = options.rate !== undefined;
    const enqueued = paced ? {} : await enqueuePlain(options, prefix);
    const total = paced ? options.jobs : unpacedTotal(options);
    if (paced) {
      children.push(...spawnPlainWorkers(options, prefix));
      await waitForWorkers({ ...options, prefix, queue: QUEUE }, options.workers, children);
    }

    const fromMs = await redisTimeMs(redis);
    const pids = (): Array<number | undefined> => children.map(({ child }) => child.pid);
    const workerCpu = new WorkerCpuMeter(pids);
    const workerRss = new RssSampler(pids, total);
    const watch = await watchDrain(
      { ...options, prefix, queue: QUEUE, fromMs, total },
      drainDeadlineMs(total),
      {
        onFirstActive: () => workerCpu.markFirstJob(),
        onCompleted: (count) => workerRss.onCompleted(count),
      },
    );
    try {
      const redisPids = serverPids('redis-server');
      const redisBefore = totalCpuMs(redisPids);
      if (paced) {
        const payload = payloadOf(options);
        const opts = plainJobOptions(options);
        await enqueuePaced(total, options.rate!, (count) =>
          queue.addBulk(
            Array.from({ length: count }, () => ({ name: QUEUE, data: payload, opts })),
          ),
        );
      } else {
        children.push(...spawnPlainWorkers(options, prefix));
      }

      const times = await watch.drained.catch((error: Error) => failWith(error, children));
      const cpu = {
        workerCpuUsPerJob: workerCpu.usPerJob(total),
        redisCpuUsPerJob: cpuUsPerJob(redisBefore, totalCpuMs(redisPids), total),
      };
      writeProfileWindow(options, `${prefix}-worker`, {
        fromMs: times.firstActiveAt,
        toMs: times.lastCompletedAt,
        jobs: total,
      });

      return {
        ...enqueued,
        drain: rate(total, times.lastCompletedAt - times.firstActiveAt),
        ...(paced ? latencySummary(times.latenciesMs) : {}),
        workerPeakRssMiB: maxOf(pids().map((pid) => peakRssMiB(pid))),
        workerRssStartMiB: workerRss.start,
        workerRssEndMiB: workerRss.largest(),
        ...cpu,
      };
    } finally {
      await watch.close();
    }
  } finally {
    const graceful = options.profileDir !== undefined;
    await Promise.all(children.map(({ child }) => stopChild(child, graceful)));
    await queue.close();
    redis.disconnect();
  }
}

function enqueuePlain(options: BenchOptions, prefix: string): Promise<EnqueuePhases> {
  return produceInChild(options, prefix, {
    side: 'plain',
    queue: QUEUE,
    eventsMaxLen: DEFAULT_EVENTS_MAX_LEN,
    job: { data: payloadOf(options), opts: plainJobOptions(options) },
  });
}

/**
 * BullMQ's defaults (its plain wait list) by default, like the project's arrival-order types;
 * with `BENCH_PRIORITY` the priority the project would give BullMQ, so both take that path;
 * with `BENCH_FAIL_TIMES` the same number of attempts, retried at once.
 */
function plainJobOptions(options: BenchOptions): JobsOptions | undefined {
  const attempts = attemptsOf(options);
  const opts: JobsOptions = {
    ...(options.priority > 0 ? { priority: toBullPriority(options.priority) } : {}),
    ...(attempts > 1 ? { attempts } : {}),
  };

  return Object.keys(opts).length > 0 ? opts : undefined;
}

function spawnPlainWorkers(options: BenchOptions, prefix: string): SpawnedScript[] {
  const workers = Array.from({ length: options.workers }, () =>
    spawnScript(
      WORKER_SCRIPT,
      {
        BENCH_QUEUE: QUEUE,
        BENCH_REDIS_URL: options.redisUrl,
        BENCH_PREFIX: prefix,
        BENCH_CONCURRENCY: String(options.concurrency),
        BENCH_JOB_MS: String(options.jobMs),
        BENCH_FAIL_TIMES: String(options.failTimes),
      },
      profileArgs(options, `${prefix}-worker`),
    ),
  );
  applyWorkerNice(
    options,
    workers.map(({ child }) => child.pid),
  );

  return workers;
}

'use strict';

/**
 * The baseline's worker process: a bare BullMQ Worker whose processor does nothing, or waits
 * `BENCH_JOB_MS`, with the same worker settings the project's workers use (lock duration and
 * stalled interval left at BullMQ's defaults, which match ours). Plain JavaScript so that it runs
 * without a build step.
 */
const { Worker } = require('bullmq');

const jobMs = Number(process.env.BENCH_JOB_MS ?? 0);
const processor =
  jobMs > 0
    ? () => new Promise((resolve) => setTimeout(() => resolve(null), jobMs))
    : async () => null;

const worker = new Worker(process.env.BENCH_QUEUE, processor, {
  connection: { url: process.env.BENCH_REDIS_URL, maxRetriesPerRequest: null },
  prefix: process.env.BENCH_PREFIX,
  concurrency: Number(process.env.BENCH_CONCURRENCY),
});

worker.on('error', (error) => console.error(`plain worker error: ${error.message}`));

// A clean exit lets `--cpu-prof` write its profile.
process.on('SIGTERM', () => {
  worker.close(true).finally(() => process.exit(0));
});

'use strict';

/**
 * The baseline's worker process: a bare BullMQ Worker whose processor does nothing, waits
 * `BENCH_JOB_MS`, or fails the first `BENCH_FAIL_TIMES` attempts, with the same worker settings
 * the project's workers use (lock duration and stalled interval left at BullMQ's defaults, which
 * match ours). Plain JavaScript so that it runs without a build step.
 */
const { Worker } = require('bullmq');

const jobMs = Number(process.env.BENCH_JOB_MS ?? 0);
const failTimes = Number(process.env.BENCH_FAIL_TIMES ?? 0);

function processorFor() {
  if (jobMs > 0) {
    return () => new Promise((resolve) => setTimeout(() => resolve(null), jobMs));
  }
  if (failTimes > 0) {
    // The project's failing handler throws an Error with the attempt in its message; so does this.
    return async (job) => {
      const attempt = job.attemptsMade + 1;
      if (attempt <= failTimes) {
        throw new Error(`diagnostic failure on attempt ${attempt}`);
      }

      return { attempt };
    };
  }

  return async () => null;
}

const processor = processorFor();

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

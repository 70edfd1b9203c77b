'use strict';

/**
 * The baseline's worker process: a bare BullMQ Worker with a no-op processor and the same worker
 * settings the project's workers use (lock duration and stalled interval left at BullMQ's
 * defaults, which match ours). Plain JavaScript so that it runs without a build step.
 */
const { Worker } = require('bullmq');

const worker = new Worker(process.env.BENCH_QUEUE, async () => null, {
  connection: { url: process.env.BENCH_REDIS_URL, maxRetriesPerRequest: null },
  prefix: process.env.BENCH_PREFIX,
  concurrency: Number(process.env.BENCH_CONCURRENCY),
});

worker.on('error', (error) => console.error(`plain worker error: ${error.message}`));

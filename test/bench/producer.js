'use strict';

/**
 * The producer of the enqueue phases, for both sides, in a process of its own: plain Node, as a
 * producer runs in production. Inside Jest's module sandbox the same `addBulk` cost about twice
 * the CPU per job (42 against 20 us), which lowered both sides' figures. Plain JavaScript, so
 * that it runs without a build step; the project's side loads the built application (`dist`),
 * which `npm run bench` builds first.
 *
 * Reads BENCH_PRODUCER as JSON: { side: 'plain' | 'project', redisUrl, prefix, queue, job,
 * eventsMaxLen (plain),
 * warmupJobs, singleJobs, jobs, inFlight, bulkChunk } (the project's side also takes its
 * application settings from the environment). Runs untimed warm-up singles, timed singles with
 * `inFlight` calls at once, then `jobs` jobs in sequential chunks, and prints one line:
 * `BENCH_RESULT {...}`.
 */
const { join } = require('node:path');

const { percentile, rate, runConcurrently } = require('./bench-measures');

const spec = JSON.parse(process.env.BENCH_PRODUCER);

async function plainProducer() {
  const { Queue } = require('bullmq');
  const queue = new Queue(spec.queue, {
    connection: { url: spec.redisUrl },
    prefix: spec.prefix,
    streams: { events: { maxLen: spec.eventsMaxLen } },
  });
  await queue.waitUntilReady();
  const { data, opts } = spec.job;

  return {
    sendOne: () => queue.add(spec.queue, data, opts),
    sendChunk: (size) =>
      queue.addBulk(Array.from({ length: size }, () => ({ name: spec.queue, data, opts }))),
    close: () => queue.close(),
  };
}

async function projectProducer() {
  const dist = join(__dirname, '..', '..', 'dist', 'src');
  const { NestFactory } = require('@nestjs/core');
  const { AppModule } = require(join(dist, 'app.module'));
  const { loadAppConfig } = require(join(dist, 'modules', 'config', 'app-config'));
  const { QueueService } = require(join(dist, 'modules', 'queue'));

  const app = await NestFactory.createApplicationContext(
    AppModule.forRoles({ config: loadAppConfig(process.env) }),
    { logger: ['error'] },
  );
  const queue = app.get(QueueService, { strict: false });
  const { jobType, payload, ...options } = spec.job;

  return {
    sendOne: () => queue.enqueue(jobType, payload, options),
    sendChunk: (size) => queue.enqueueMany(Array.from({ length: size }, () => ({ ...spec.job }))),
    close: () => app.close(),
  };
}

async function timed(call, latencies) {
  const started = performance.now();
  await call();
  latencies.push(performance.now() - started);
}

function percentileMs(values, share) {
  const value = percentile(values, share);

  return value === undefined ? undefined : Math.round(value * 10) / 10;
}

function cpuUsPerJob(before, jobs) {
  const used = process.cpuUsage(before);

  return Math.round((used.user + used.system) / Math.max(jobs, 1));
}

async function measure({ sendOne, sendChunk }) {
  await runConcurrently(spec.warmupJobs, spec.inFlight, sendOne);

  const singleLatencies = [];
  let cpuBefore = process.cpuUsage();
  let started = performance.now();
  const singleFromMs = Date.now();
  await runConcurrently(spec.singleJobs, spec.inFlight, () => timed(sendOne, singleLatencies));
  const singleEnqueue = rate(spec.singleJobs, performance.now() - started);
  const singleEnqueueCpuUsPerJob = cpuUsPerJob(cpuBefore, spec.singleJobs);
  // For a CPU profile of this process: the window of the timed singles, in wall-clock time.
  const window = { fromMs: singleFromMs, toMs: Date.now(), jobs: spec.singleJobs };
  process.stdout.write(`BENCH_SINGLE_WINDOW ${JSON.stringify(window)}\n`);

  const bulkLatencies = [];
  cpuBefore = process.cpuUsage();
  started = performance.now();
  for (let sent = 0; sent < spec.jobs; sent += spec.bulkChunk) {
    const size = Math.min(spec.bulkChunk, spec.jobs - sent);
    await timed(() => sendChunk(size), bulkLatencies);
  }
  const bulkEnqueue = rate(spec.jobs, performance.now() - started);
  const bulkEnqueueCpuUsPerJob = cpuUsPerJob(cpuBefore, spec.jobs);

  return {
    bulkEnqueue,
    singleEnqueue,
    singleEnqueueP50Ms: percentileMs(singleLatencies, 0.5),
    singleEnqueueP99Ms: percentileMs(singleLatencies, 0.99),
    bulkEnqueueP50Ms: percentileMs(bulkLatencies, 0.5),
    bulkEnqueueP99Ms: percentileMs(bulkLatencies, 0.99),
    singleEnqueueCpuUsPerJob,
    bulkEnqueueCpuUsPerJob,
  };
}

async function main() {
  const producer = spec.side === 'plain' ? await plainProducer() : await projectProducer();
  try {
    const result = await measure(producer);
    process.stdout.write(`BENCH_RESULT ${JSON.stringify(result)}\n`);
  } finally {
    await producer.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});

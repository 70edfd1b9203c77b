import { getQueueToken } from '@nestjs/bullmq';
import { INestApplication } from '@nestjs/common';
import { Queue } from 'bullmq';
import request from 'supertest';
import { DataSource } from 'typeorm';

import { JobEntity } from '../src/entities';
import { SEND_CHUNK_SIZE } from '../src/modules/queue/job-dispatcher.service';
import { toBullPriority } from '../src/modules/queue/queue.constants';
import { JobValidationError } from '../src/modules/queue/queue.errors';
import { QueueService } from '../src/modules/queue/queue.service';
import {
  getService,
  TestEnvironment,
  useTestApp,
  useTestEnvironment,
  waitFor,
  waitForFinished,
} from './support/test-context';

const FIFO = 'diag_noop_fifo';
const FIFO_RULE = `expected 0 for job type "${FIFO}", which runs in arrival order (prioritized: false)`;

async function countRows(app: INestApplication): Promise<number> {
  const [{ n }] = await app
    .get(DataSource)
    .query<Array<{ n: string | number }>>('SELECT COUNT(*) AS n FROM job_queue');

  return Number(n);
}

/**
 * The queue's Redis keys but its `meta`, which BullMQ writes when the app opens the queue: any
 * other key would be a job, a list holding one, or an event about one.
 */
async function jobKeysOf(env: TestEnvironment, jobType: string): Promise<string[]> {
  const keys = await env.redis.keys(`${env.prefix}:${jobType}:*`);

  return keys.filter((key) => key !== `${env.prefix}:${jobType}:meta`);
}

describe('a job type that runs in arrival order (prioritized: false)', () => {
  const shared = useTestEnvironment('fifoorder');

  it('sends its jobs to the wait list without a priority and runs them as they came', async () => {
    const producer = await shared.start({
      roles: ['api', 'ledger'],
      config: { diagnosticJobs: true },
    });
    const queue = getService(producer, QueueService);
    const bullQueue = producer.get<Queue>(getQueueToken(FIFO));

    const enqueued: JobEntity[] = [];
    for (let i = 0; i < 6; i++) {
      enqueued.push(await queue.enqueue(FIFO, { i }, i % 2 === 0 ? { priority: 0 } : {}));
    }
    enqueued.push(
      ...(await queue.enqueueMany([6, 7, 8].map((i) => ({ jobType: FIFO, payload: { i } })))),
    );
    enqueued.push(await queue.enqueue(FIFO, { i: 9 }));
    const ids = enqueued.map((job) => job.id);
    const bullIds = ids.map((id) => `job-${id}`);

    // BullMQ pushes new jobs on the left of the wait list and takes them from the right.
    const waitKey = `${shared.env.prefix}:${FIFO}:wait`;
    const waiting = await waitFor('every job in the wait list', async () => {
      const list = await shared.env.redis.lrange(waitKey, 0, -1);

      return list.length === ids.length ? list : undefined;
    });
    expect([...waiting].reverse()).toEqual(bullIds);
    expect(await shared.env.redis.zcard(`${shared.env.prefix}:${FIFO}:prioritized`)).toBe(0);

    const first = await bullQueue.getJob(bullIds[0]);
    expect(first?.opts).not.toHaveProperty('priority');
    expect(first?.priority).toBe(0);
    expect(await bullQueue.getJobState(bullIds[0])).toBe('waiting');

    await shared.start({
      roles: ['worker'],
      config: { diagnosticJobs: true, workerConcurrency: 1, workerJobTypes: [FIFO] },
    });
    for (const id of ids) {
      expect((await waitForFinished(queue, id)).status).toBe('completed');
    }

    const started = await producer
      .get(DataSource)
      .query<Array<{ job_id: string }>>(
        `SELECT job_id FROM job_queue_history WHERE to_status = 'processing' ORDER BY id`,
      );
    expect(started.map((row) => Number(row.job_id))).toEqual(ids);
  });

  it('leaves a prioritized type on the priority path, priority 0 included', async () => {
    const producer = await shared.start({ roles: ['api'], config: { diagnosticJobs: true } });
    const queue = getService(producer, QueueService);
    const bullQueue = producer.get<Queue>(getQueueToken('diag_noop'));

    const job = await queue.enqueue('diag_noop', {});

    const state = await waitFor('the prioritized job in Redis', async () => {
      const current = await bullQueue.getJobState(`job-${job.id}`);

      return current === 'unknown' ? undefined : current;
    });
    expect(state).toBe('prioritized');
    expect((await bullQueue.getJob(`job-${job.id}`))?.opts.priority).toBe(toBullPriority(0));
  });
});

describe('a priority for a job type that runs in arrival order', () => {
  const shared = useTestApp('fifoapi', { roles: ['api'], config: { diagnosticJobs: true } });
  const http = () => request(shared.app.getHttpServer());

  afterEach(async () => {
    // Every refusal in this block must leave the ledger and Redis as they were: empty.
    expect(await countRows(shared.app)).toBe(0);
    expect(await jobKeysOf(shared.env, FIFO)).toEqual([]);
  });

  it('is refused over HTTP with 400 naming priority and the rule', async () => {
    const { body } = await http()
      .post('/jobs')
      .send({ jobType: FIFO, payload: {}, priority: 3 })
      .expect(400);

    expect(body).toEqual({
      statusCode: 400,
      error: 'Bad Request',
      message: [`priority: ${FIFO_RULE}, got 3`],
      field: 'priority',
      rule: FIFO_RULE,
    });
  });

  it('fails a whole HTTP batch, naming the job by its index', async () => {
    const jobs = [
      { jobType: FIFO, payload: { i: 0 } },
      { jobType: FIFO, payload: { i: 1 } },
      { jobType: 'diag_noop', payload: { i: 2 }, priority: 3 },
      { jobType: FIFO, payload: { i: 3 }, priority: 3 },
    ];

    const { body } = await http().post('/jobs/batch').send({ jobs }).expect(400);

    expect(body).toMatchObject({ field: 'jobs[3].priority', rule: FIFO_RULE });
  });

  it('is refused by QueueService for a single, a batch and a transactional enqueue', async () => {
    const queue = getService(shared.app, QueueService);
    const dataSource = shared.app.get(DataSource);

    await expect(queue.enqueue(FIFO, {}, { priority: 3 })).rejects.toMatchObject({
      field: 'priority',
      rule: FIFO_RULE,
    });
    await expect(
      queue.enqueueMany([
        { jobType: FIFO, payload: {} },
        { jobType: FIFO, payload: {}, priority: 1 },
      ]),
    ).rejects.toMatchObject({ field: 'jobs[1].priority' });
    await expect(
      dataSource.transaction((manager) => queue.enqueue(FIFO, {}, { priority: 2, manager })),
    ).rejects.toBeInstanceOf(JobValidationError);
  });
});

describe('the ledger of a job that ran in arrival order', () => {
  const shared = useTestApp('fifoledger', {
    roles: ['api', 'ledger', 'worker'],
    config: { diagnosticJobs: true, workerJobTypes: [FIFO] },
  });

  it('records its whole history, from pending to completed on the first attempt', async () => {
    const queue = getService(shared.app, QueueService);

    const job = await queue.enqueue(FIFO, { n: 1 });

    const row = await waitForFinished(queue, job.id);
    expect(row).toMatchObject({
      status: 'completed',
      priority: 0,
      attemptCount: 1,
      errorMessage: null,
    });
    expect(row.worker).toBeTruthy();
    expect(row.dispatchedAt).toBeInstanceOf(Date);
    expect(row.startedAt).toBeInstanceOf(Date);
    expect(row.finishedAt).toBeInstanceOf(Date);
    const history = await queue.history(job.id);
    expect(history.map((t) => [t.fromStatus, t.toStatus, t.attempt, t.source])).toEqual([
      [null, 'pending', 0, 'enqueue'],
      ['pending', 'processing', 1, 'event'],
      ['processing', 'completed', 1, 'event'],
    ]);
  });
});

describe('a batch of a job type that runs in arrival order, larger than one send call', () => {
  // No worker in this environment: the wait list keeps every job of the batch.
  const shared = useTestEnvironment('fifobatch');

  it('keeps a batch larger than one send call in arrival order in the wait list', async () => {
    const producer = await shared.start({ roles: ['api'], config: { diagnosticJobs: true } });
    const queue = getService(producer, QueueService);
    const count = SEND_CHUNK_SIZE * 2 + 50;

    const rows = await queue.enqueueMany(
      Array.from({ length: count }, (_, i) => ({ jobType: FIFO, payload: { i } })),
    );

    const waitKey = `${shared.env.prefix}:${FIFO}:wait`;
    const waiting = await waitFor('the whole batch in the wait list', async () => {
      const list = await shared.env.redis.lrange(waitKey, 0, -1);

      return list.length === count ? list : undefined;
    });
    // BullMQ pushes new jobs on the left of the wait list.
    expect([...waiting].reverse()).toEqual(rows.map((row) => `job-${row.id}`));
  });
});

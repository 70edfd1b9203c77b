import { DataSource } from 'typeorm';

import { producerLeaseExpiryKey, producerLeasesKey } from '../src/modules/queue/producer-lease';
import { eventsStreamKey, ledgerProgressKey } from '../src/modules/queue/queue.constants';
import { LedgerBehindError } from '../src/modules/queue/queue.errors';
import { QueueService } from '../src/modules/queue/queue.service';
import { JobWorkerProcessor } from '../src/modules/worker/job-worker.processor';
import {
  getService,
  streamCounters,
  TestEnvironment,
  useTestEnvironment,
  waitFor,
} from './support/test-context';

const JOB_TYPE = 'diag_sleep_fifo';
// A short stream, so that the jobs below write more events than it keeps: without the hold,
// the worker would run them all while the ledger is away, and the stream would be trimmed
// past entries the ledger never read (see the trimmed-stream test in ledger-repair).
const EVENTS_MAX_LEN = 1000;
const LIMIT = 400;
const JOBS = 300;

async function countRows(dataSource: DataSource): Promise<number> {
  const [{ n }] = await dataSource.query<Array<{ n: string }>>(
    'SELECT COUNT(*) AS n FROM job_queue',
  );

  return Number(n);
}

const JOBS_PER_BATCH = 20;

/** Tries one enqueue; the refusal, or `undefined` once the job was accepted. */
async function refusal(attempt: () => Promise<unknown>): Promise<LedgerBehindError | undefined> {
  try {
    await attempt();

    return undefined;
  } catch (error) {
    if (error instanceof LedgerBehindError) {
      return error;
    }
    throw error;
  }
}

/** Batches of `JOBS_PER_BATCH` and single jobs, all at once; how many calls were refused. */
async function enqueueBurst(
  queue: QueueService,
  batches: number,
  singles: number,
): Promise<{ refused: number; accepted: number }> {
  const batchCalls = Array.from({ length: batches }, () =>
    refusal(() =>
      queue.enqueueMany(
        Array.from({ length: JOBS_PER_BATCH }, (_, i) => ({ jobType: JOB_TYPE, payload: { i } })),
      ),
    ),
  );
  const singleCalls = Array.from({ length: singles }, (_, i) =>
    refusal(() => queue.enqueue(JOB_TYPE, { i })),
  );
  const outcomes = await Promise.all([...batchCalls, ...singleCalls]);
  const refused = outcomes.filter((outcome) => outcome !== undefined).length;

  return { refused, accepted: outcomes.length - refused };
}

/** Entries of the queue's stream past the ledger's progress. */
async function unreadEntries(env: TestEnvironment): Promise<number> {
  const { entriesAdded } = await streamCounters(env, JOB_TYPE);

  return entriesAdded - Number(await env.redis.get(ledgerProgressKey(env.prefix, JOB_TYPE)));
}

async function aLedgerOneEntryBehind(env: TestEnvironment): Promise<void> {
  await env.redis.xadd(eventsStreamKey(env.prefix, JOB_TYPE), '*', 'event', 'probe');
  const { entriesAdded } = await streamCounters(env, JOB_TYPE);
  await env.redis.set(ledgerProgressKey(env.prefix, JOB_TYPE), entriesAdded - 1);
}

describe('when the ledger falls too far behind on a queue', () => {
  const shared = useTestEnvironment('backlog');

  it('holds that queue’s worker until the ledger has read down to half the limit', async () => {
    const producer = await shared.start({
      roles: ['api', 'worker'],
      config: {
        diagnosticJobs: true,
        eventsMaxLen: EVENTS_MAX_LEN,
        workerConcurrency: 5,
        workerLedgerBacklogLimit: LIMIT,
      },
    });
    const queue = getService(producer, QueueService);
    const processor = getService(producer, JobWorkerProcessor);
    const { redis, prefix } = shared.env;

    // A ledger that has said it read nothing yet, as one that stopped right after starting.
    await redis.set(ledgerProgressKey(prefix, JOB_TYPE), 0);
    const requests = Array.from({ length: JOBS }, () => ({
      jobType: JOB_TYPE,
      payload: { ms: 20 },
    }));
    const jobs = await queue.enqueueMany(requests);

    await waitFor('the worker to be held for the ledger', () =>
      Promise.resolve(processor.heldForLedger.includes(JOB_TYPE)),
    );
    const bullQueue = `${prefix}:${JOB_TYPE}`;
    await waitFor('the jobs it had taken to finish', async () => {
      return (await redis.llen(`${bullQueue}:active`)) === 0;
    });
    const waitingWhenHeld = await redis.llen(`${bullQueue}:wait`);
    expect(waitingWhenHeld).toBeGreaterThan(0);

    // Four of the watch's checks later it still holds the worker, and no job was taken.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(processor.heldForLedger).toEqual([JOB_TYPE]);
    expect(await redis.llen(`${bullQueue}:wait`)).toBe(waitingWhenHeld);

    // The ledger starts, reads, says how far it got: the worker takes jobs again.
    const ledger = await shared.start({
      roles: ['ledger'],
      config: { diagnosticJobs: true, eventsMaxLen: EVENTS_MAX_LEN },
    });
    const dataSource = ledger.get(DataSource);
    await waitFor(
      'every row to be completed in the ledger',
      async () => {
        const [{ open }] = (await dataSource.query(
          `SELECT COUNT(*) AS open FROM job_queue WHERE status <> 'completed'`,
        )) as Array<{ open: string }>;

        return Number(open) === 0;
      },
      30_000,
    );

    // The stream was trimmed, but only past entries the ledger had read: every job has its
    // three transitions, none from a repair.
    const { entriesAdded, length } = await streamCounters(shared.env, JOB_TYPE);
    expect(entriesAdded).toBeGreaterThanOrEqual(JOBS * 4);
    expect(length).toBeLessThan(entriesAdded);
    const paths = (await dataSource.query(
      `SELECT job_id, GROUP_CONCAT(CONCAT(source, ':', COALESCE(from_status, 'null'), '>',
         to_status) ORDER BY id) AS path
       FROM job_queue_history GROUP BY job_id`,
    )) as Array<{ job_id: string; path: string }>;
    expect(paths).toHaveLength(jobs.length);
    const distinct = [...new Set(paths.map((row) => row.path))];
    expect(distinct).toHaveLength(1);
    expect(distinct[0]).not.toContain('repair');
    expect(distinct[0].split(',').map((step) => step.split(':')[1])).toEqual([
      'null>pending',
      'pending>processing',
      'processing>completed',
    ]);
    expect(Number(await redis.get(ledgerProgressKey(prefix, JOB_TYPE)))).toBeGreaterThan(0);
  });
});

describe('when producers would outrun a ledger that is too far behind', () => {
  const shared = useTestEnvironment('backlogproducer');
  const PRODUCER_LIMIT = 40;

  it('refuses that queue’s new jobs, writing nothing, until the ledger has caught up', async () => {
    const producer = await shared.start({
      roles: ['api'],
      config: {
        diagnosticJobs: true,
        eventsMaxLen: EVENTS_MAX_LEN,
        producerLedgerBacklogLimit: PRODUCER_LIMIT,
      },
    });
    const queue = getService(producer, QueueService);
    const dataSource = producer.get(DataSource);
    const { redis, prefix } = shared.env;
    const progressKey = ledgerProgressKey(prefix, JOB_TYPE);

    // No ledger has published its progress: the backlog is unknown and nothing is held.
    await queue.enqueueMany(
      Array.from({ length: PRODUCER_LIMIT }, (_, i) => ({ jobType: JOB_TYPE, payload: { i } })),
    );

    // A ledger that has read nothing of the stream, which now holds two events per job.
    await redis.set(progressKey, 0);
    const refused = await waitFor('enqueues of the lagging queue to be refused', () =>
      refusal(() => queue.enqueue(JOB_TYPE, { probe: true })),
    );
    expect(refused).toMatchObject({ queue: JOB_TYPE, limit: PRODUCER_LIMIT });
    expect(refused.unreadEntries).toBeGreaterThanOrEqual(PRODUCER_LIMIT);
    expect(refused.message).toContain(`queue "${JOB_TYPE}"`);

    // Every way in is refused while it lasts, and writes nothing.
    const rowsBefore = await countRows(dataSource);
    const attempts = [
      () => queue.enqueue(JOB_TYPE, { single: true }),
      () =>
        queue.enqueueMany([
          { jobType: 'diag_noop', payload: {} },
          { jobType: JOB_TYPE, payload: {} },
        ]),
      () =>
        dataSource.transaction((manager) => queue.enqueue(JOB_TYPE, { inTx: true }, { manager })),
    ];
    for (const attempt of attempts) {
      expect(await refusal(attempt)).toBeInstanceOf(LedgerBehindError);
    }
    expect(await countRows(dataSource)).toBe(rowsBefore);

    // Other queues are not held.
    await expect(queue.enqueue('diag_noop', { other: true })).resolves.toMatchObject({
      status: 'pending',
    });

    // The ledger says it has read everything: jobs are accepted again.
    const { entriesAdded } = await streamCounters(shared.env, JOB_TYPE);
    await redis.set(progressKey, entriesAdded);
    const accepted = await waitFor('enqueues to be accepted again', async () =>
      (await refusal(() => queue.enqueue(JOB_TYPE, { after: true }))) ? undefined : true,
    );
    expect(accepted).toBe(true);
  });

  it('lets a burst of concurrent enqueues past the limit by one call at most', async () => {
    const limit = PRODUCER_LIMIT * 5;
    const producer = await shared.start({
      roles: ['api'],
      config: {
        diagnosticJobs: true,
        eventsMaxLen: EVENTS_MAX_LEN,
        producerLedgerBacklogLimit: limit,
      },
    });

    // A ledger that has read all but the stream's last entry, then stops reading. Set before
    // this process's first look at the queue, which every enqueue of the burst then waits for.
    await aLedgerOneEntryBehind(shared.env);

    const outcomes = await enqueueBurst(getService(producer, QueueService), 40, 200);

    expect(outcomes.refused).toBeGreaterThan(0);
    const backlog = await unreadEntries(shared.env);
    expect(backlog).toBeGreaterThan(limit / 2);
    expect(backlog).toBeLessThanOrEqual(limit + JOBS_PER_BATCH * 2);
  });

  it('refuses nothing with the limit at 0', async () => {
    const producer = await shared.start({
      roles: ['api'],
      config: { diagnosticJobs: true, eventsMaxLen: EVENTS_MAX_LEN, producerLedgerBacklogLimit: 0 },
    });
    const queue = getService(producer, QueueService);
    const { redis, prefix } = shared.env;
    await queue.enqueueMany(
      Array.from({ length: PRODUCER_LIMIT }, (_, i) => ({ jobType: JOB_TYPE, payload: { i } })),
    );
    await redis.set(ledgerProgressKey(prefix, JOB_TYPE), 0);
    const { entriesAdded } = await streamCounters(shared.env, JOB_TYPE);
    expect(entriesAdded).toBeGreaterThanOrEqual(PRODUCER_LIMIT * 2);

    // Past the gate's reading interval several times over, every enqueue is still accepted.
    const started = Date.now();
    while (Date.now() - started < 1000) {
      await expect(queue.enqueue(JOB_TYPE, { at: Date.now() })).resolves.toMatchObject({
        status: 'pending',
      });
    }
  });
});

describe('producers in several API processes', () => {
  const shared = useTestEnvironment('backlogglobal');
  const LIMIT_ENTRIES = 200;

  const startProducer = () =>
    shared.start({
      roles: ['api'],
      config: {
        diagnosticJobs: true,
        eventsMaxLen: EVENTS_MAX_LEN,
        producerLedgerBacklogLimit: LIMIT_ENTRIES,
      },
    });

  const leases = () => shared.env.redis.hgetall(producerLeasesKey(shared.env.prefix, JOB_TYPE));

  it('share one limit: together they pass it by one call each at most', async () => {
    const first = await startProducer();
    const second = await startProducer();
    await aLedgerOneEntryBehind(shared.env);

    // Each alone may fill the whole room; at once, each one's lease leaves the other less.
    const [fromFirst, fromSecond] = await Promise.all([
      enqueueBurst(getService(first, QueueService), 20, 100),
      enqueueBurst(getService(second, QueueService), 20, 100),
    ]);

    expect(fromFirst.refused + fromSecond.refused).toBeGreaterThan(0);
    expect(fromFirst.accepted + fromSecond.accepted).toBeGreaterThan(0);
    const backlog = await unreadEntries(shared.env);
    expect(backlog).toBeGreaterThan(LIMIT_ENTRIES / 2);
    expect(backlog).toBeLessThanOrEqual(LIMIT_ENTRIES + 2 * JOBS_PER_BATCH * 2);
  });

  it('gives a stopped process’s share back, and takes back a lapsed one', async () => {
    const { redis, prefix } = shared.env;
    await aLedgerOneEntryBehind(shared.env);
    // Idle since the burst above, its producers report what landed and give their spare back.
    await waitFor('idle producers to give their leases back', async () =>
      Object.keys(await leases()).length === 0 ? true : undefined,
    );

    const stopped = await startProducer();
    await getService(stopped, QueueService).enqueue(JOB_TYPE, { before: 'stop' });
    expect(Object.keys(await leases())).toHaveLength(1);
    await shared.stop(stopped);
    expect(Object.keys(await leases())).toHaveLength(0);

    // A process that died holding the whole room: refused until its lease lapses.
    await redis.set(
      ledgerProgressKey(prefix, JOB_TYPE),
      (await streamCounters(shared.env, JOB_TYPE)).entriesAdded,
    );
    await redis.hset(producerLeasesKey(prefix, JOB_TYPE), 'dead-process', LIMIT_ENTRIES);
    await redis.zadd(producerLeaseExpiryKey(prefix, JOB_TYPE), Date.now() + 1_500, 'dead-process');
    const survivor = getService(await startProducer(), QueueService);
    expect(await refusal(() => survivor.enqueue(JOB_TYPE, { while: 'held' }))).toBeInstanceOf(
      LedgerBehindError,
    );

    const accepted = await waitFor('the dead process’s lease to lapse', async () =>
      (await refusal(() => survivor.enqueue(JOB_TYPE, { after: 'lapse' }))) ? undefined : true,
    );
    expect(accepted).toBe(true);
    expect(await leases()).not.toHaveProperty('dead-process');
  });
});

interface Progress {
  refusals: number;
  done: boolean;
}

describe('producers and workers while the ledger is away, on a short stream', () => {
  const shared = useTestEnvironment('backlogboth');
  const JOB_COUNT = 900;

  /** Enqueues jobs one by one, waiting and retrying whenever the ledger is behind. */
  async function enqueueRetrying(queue: QueueService, count: number, progress: Progress) {
    for (let i = 0; i < count; i++) {
      for (;;) {
        try {
          await queue.enqueue(JOB_TYPE, { ms: 1, i });
          break;
        } catch (error) {
          if (!(error instanceof LedgerBehindError)) {
            throw error;
          }
          progress.refusals += 1;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    }
    progress.done = true;
  }

  it('loses no transition: the stream is trimmed only past entries the ledger has read', async () => {
    const config = {
      diagnosticJobs: true,
      eventsMaxLen: EVENTS_MAX_LEN,
      workerConcurrency: 10,
      workerLedgerBacklogLimit: 400,
      producerLedgerBacklogLimit: 700,
    };
    const producer = await shared.start({ roles: ['api', 'worker'], config });
    const queue = getService(producer, QueueService);
    const { redis, prefix } = shared.env;

    // A ledger that read nothing and then went away; producers keep trying.
    await redis.set(ledgerProgressKey(prefix, JOB_TYPE), 0);
    const progress: Progress = { refusals: 0, done: false };
    const producing = enqueueRetrying(queue, JOB_COUNT, progress);
    const processor = getService(producer, JobWorkerProcessor);
    await waitFor('the worker to be held for the ledger', () =>
      Promise.resolve(processor.heldForLedger.includes(JOB_TYPE)),
    );
    await waitFor('producers to be refused', () => Promise.resolve(progress.refusals > 0));
    expect(progress.done).toBe(false);

    // The ledger comes back and catches up; producers and workers go on.
    const ledger = await shared.start({
      roles: ['ledger'],
      config: { diagnosticJobs: true, eventsMaxLen: EVENTS_MAX_LEN },
    });
    await producing;
    const dataSource = ledger.get(DataSource);
    await waitFor(
      'every row to be completed in the ledger',
      async () => {
        const [{ open, total }] = await dataSource.query<Array<{ open: string; total: string }>>(
          `SELECT SUM(status <> 'completed') AS open, COUNT(*) AS total FROM job_queue`,
        );

        return Number(total) === JOB_COUNT && Number(open) === 0;
      },
      60_000,
    );

    // More events were written than the stream keeps, yet every job has its three transitions.
    const { entriesAdded, length } = await streamCounters(shared.env, JOB_TYPE);
    expect(entriesAdded).toBeGreaterThan(EVENTS_MAX_LEN * 2);
    expect(length).toBeLessThan(entriesAdded);
    const paths = await dataSource.query<Array<{ path: string; jobs: string }>>(
      `SELECT path, COUNT(*) AS jobs FROM (
         SELECT job_id, GROUP_CONCAT(CONCAT(source, ':', COALESCE(from_status, 'null'), '>',
           to_status) ORDER BY id) AS path
         FROM job_queue_history GROUP BY job_id) per_job
       GROUP BY path`,
    );
    expect(paths).toEqual([
      {
        path: 'enqueue:null>pending,event:pending>processing,event:processing>completed',
        jobs: String(JOB_COUNT),
      },
    ]);
  });
});

import { INestApplication } from '@nestjs/common';
import { DataSource } from 'typeorm';

import { LedgerProjector } from '../src/modules/ledger/ledger-projector.service';
import { QueueService } from '../src/modules/queue/queue.service';
import {
  createTestEnvironment,
  getService,
  startApp,
  streamCounters,
  TestEnvironment,
  useTestEnvironment,
  waitFor,
} from './support/test-context';

const JOB_TYPE = 'diag_noop_fifo';
/** Long enough that only a write or a shutdown can save the cursors within a test. */
const LONG_DEFERRAL = { diagnosticJobs: true, ledgerCursorSaveDeferMs: 60_000 };

async function storedEntriesRead(app: INestApplication, env: TestEnvironment): Promise<number> {
  const [cursor] = await app
    .get(DataSource)
    .query<Array<{ entries_read: string | number }>>(
      'SELECT entries_read FROM ledger_cursor WHERE stream_key = ?',
      [`${env.prefix}:${JOB_TYPE}:events`],
    );

  return Number(cursor?.entries_read ?? 0);
}

/** Enqueues jobs with no worker running and waits until the projector has read their events. */
async function enqueueAndWaitForRead(app: INestApplication, env: TestEnvironment, count: number) {
  const jobs = await getService(app, QueueService).enqueueMany(
    Array.from({ length: count }, (_, i) => ({ jobType: JOB_TYPE, payload: { i } })),
  );
  const { entriesAdded } = await streamCounters(env, JOB_TYPE);
  const unread = entriesAdded - (await storedEntriesRead(app, env));
  const projector = getService(app, LedgerProjector);
  await waitFor(`the projector to read the ${unread} enqueue events`, () =>
    Promise.resolve(projector.eventsAwaitingCursorSave === unread),
  );

  return { jobs, entriesAdded };
}

describe('cursors of batches that change no row', () => {
  const shared = useTestEnvironment('cursordefer');

  it('are not saved by those batches but with the next batch that writes', async () => {
    const ledger = await shared.start({ roles: ['api', 'ledger'], config: LONG_DEFERRAL });
    const queue = getService(ledger, QueueService);
    const projector = getService(ledger, LedgerProjector);

    const { jobs, entriesAdded } = await enqueueAndWaitForRead(ledger, shared.env, 30);

    // `added` and first `waiting` events change no row, so nothing was committed for them.
    expect(await storedEntriesRead(ledger, shared.env)).toBe(0);
    expect(projector.stats.eventsRead).toBe(0);

    await shared.start({
      roles: ['worker'],
      config: { ...LONG_DEFERRAL, workerJobTypes: [JOB_TYPE] },
    });
    await waitFor('every job to be recorded completed', async () => {
      const rows = await Promise.all(jobs.map((job) => queue.get(job.id)));

      return rows.every((row) => row?.status === 'completed');
    });

    // The starts and ends were committed with the cursor past the enqueue events.
    expect(await storedEntriesRead(ledger, shared.env)).toBeGreaterThan(entriesAdded);
    const [{ counts }] = await ledger.get(DataSource).query<Array<{ counts: string }>>(
      `SELECT GROUP_CONCAT(DISTINCT n) AS counts FROM (
           SELECT COUNT(*) AS n FROM job_queue_history GROUP BY job_id) per_job`,
    );
    expect(counts).toBe('3');
  });
});

describe('a ledger that stops with cursors waiting to be saved', () => {
  let env: TestEnvironment;

  beforeAll(async () => {
    env = await createTestEnvironment('cursorshutdown');
  });

  afterAll(async () => {
    await env?.cleanup();
  });

  it('saves them as it shuts down, so that its successor does not read those events again', async () => {
    const first = await startApp(env, { roles: ['api', 'ledger'], config: LONG_DEFERRAL });
    let firstClosed = false;
    try {
      const { entriesAdded } = await enqueueAndWaitForRead(first, env, 20);
      expect(await storedEntriesRead(first, env)).toBe(0);

      await first.close();
      firstClosed = true;

      const second = await startApp(env, { roles: ['api', 'ledger'], config: LONG_DEFERRAL });
      try {
        expect(await storedEntriesRead(second, env)).toBe(entriesAdded);
        // The successor starts at the saved cursor: what it reads next is the new events alone.
        const more = await enqueueAndWaitForRead(second, env, 5);
        expect(more.entriesAdded).toBe(entriesAdded + 10);
      } finally {
        await second.close();
      }
    } finally {
      if (!firstClosed) {
        await first.close();
      }
    }
  });
});

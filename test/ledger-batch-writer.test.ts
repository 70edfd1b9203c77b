import { DataSource } from 'typeorm';

import { LedgerBatchWriter } from '../src/modules/ledger/ledger-batch.writer';
import { LedgerRowState } from '../src/modules/ledger/transition-rules';
import { QueueService } from '../src/modules/queue/queue.service';
import { getService, useTestApp } from './support/test-context';

describe('the ledger writer updating rows in one statement', () => {
  const shared = useTestApp('writer', { roles: ['api'], config: { diagnosticJobs: true } });

  it.each([
    ['MariaDB table value constructor', '10.11.19-MariaDB'],
    ['portable UNION ALL SELECT', '8.0.36'],
  ])('writes each row its own values (%s)', async (_, serverVersion) => {
    const queue = getService(shared.app, QueueService);
    const dataSource = shared.app.get(DataSource);
    const jobs = await queue.enqueueMany(
      Array.from({ length: 3 }, (__, i) => ({ jobType: 'diag_noop', payload: { i } })),
    );
    const writer = new LedgerBatchWriter();
    writer.useServerVersion(serverVersion);
    const at = new Date('2026-12-03T10:00:00.123Z');

    const rows: LedgerRowState[] = jobs.map((job, i) => ({
      id: job.id,
      status: i === 0 ? 'failed' : 'completed',
      attemptCount: i + 1,
      errorMessage: i === 0 ? "it's broken" : null,
      worker: i === 2 ? null : `host:${i}`,
      runAt: null,
      dispatchedAt: at,
      startedAt: new Date(at.getTime() + i),
      finishedAt: new Date(at.getTime() + 10 + i),
      lastEventId: `1764756000123-${i}`,
    }));
    await dataSource.transaction((manager) => writer.updateRows(manager, rows));

    const stored = await writer.loadRows(
      dataSource.manager,
      jobs.map((job) => job.id),
    );
    expect(jobs.map((job) => stored.get(job.id))).toEqual(rows);
  });
});

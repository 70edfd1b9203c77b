import { JobContext } from '../worker/job-context.interface';
import { UnrecoverableJobError } from '../worker/unrecoverable-job.error';
import { DataJobsHandler } from './data-jobs.handler';
import { SimulatedTransientError } from './simulated-work';

function contextFor(jobType: string, attempt: number, maxAttempts = 2): JobContext {
  return { id: 11, jobType, attempt, maxAttempts, signal: new AbortController().signal };
}

describe('DataJobsHandler', () => {
  const handler = new DataJobsHandler();
  const backup = { database: 'users_db', target: 's3://backups/' };
  const exportRequest = { format: 'csv', table: 'orders' };
  const migration = { source: 'legacy_db', destination: 'new_db' };

  it('backs up, exports and migrates the sample payloads', async () => {
    const result = { rows: expect.any(Number), durationMs: expect.any(Number) };

    await expect(handler.backUp(backup, contextFor('data_backup', 1))).resolves.toEqual(result);
    await expect(handler.export(exportRequest, contextFor('data_export', 1))).resolves.toEqual(
      result,
    );
    await expect(handler.migrate(migration, contextFor('data_migration', 1))).resolves.toEqual(
      result,
    );
  });

  describe('when the payload can never succeed', () => {
    it('fails a backup without `target`, naming the field', async () => {
      await expect(
        handler.backUp({ database: 'users_db' }, contextFor('data_backup', 1)),
      ).rejects.toThrow(
        new UnrecoverableJobError(
          'payload.target: expected a non-empty string, got nothing (the field is missing)',
        ),
      );
    });

    it('fails an export to an unknown format, listing the known ones', async () => {
      await expect(
        handler.export({ ...exportRequest, format: 'xml' }, contextFor('data_export', 1)),
      ).rejects.toThrow('payload.format: expected one of csv, json, got a string of another form');
    });

    it('fails a migration whose destination is its source', async () => {
      const sameDatabase = { source: 'legacy_db', destination: 'legacy_db' };

      await expect(
        handler.migrate(sameDatabase, contextFor('data_migration', 1)),
      ).rejects.toBeInstanceOf(UnrecoverableJobError);
    });

    it('fails a payload that is not an object', async () => {
      await expect(handler.backUp(['users_db'], contextFor('data_backup', 1))).rejects.toThrow(
        'payload: expected an object, got an array',
      );
    });
  });

  describe('when the payload asks for simulated failures', () => {
    it('fails every attempt up to `simulateFailures`, then succeeds', async () => {
      const failingTwice = { ...backup, simulateFailures: 2 };

      await expect(handler.backUp(failingTwice, contextFor('data_backup', 1, 3))).rejects.toThrow(
        SimulatedTransientError,
      );
      await expect(handler.backUp(failingTwice, contextFor('data_backup', 2, 3))).rejects.toThrow(
        'simulated transient failure (attempt 2 of 3)',
      );
      await expect(
        handler.backUp(failingTwice, contextFor('data_backup', 3, 3)),
      ).resolves.toBeDefined();
    });
  });
});

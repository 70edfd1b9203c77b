import { JobContext } from '../worker/job-context.interface';
import { UnrecoverableJobError } from '../worker/unrecoverable-job.error';
import { ReportGenerateHandler } from './report-generate.handler';

function contextFor(attempt: number): JobContext {
  return {
    id: 3,
    jobType: 'report_generate',
    attempt,
    maxAttempts: 3,
    signal: new AbortController().signal,
  };
}

describe('ReportGenerateHandler', () => {
  const handler = new ReportGenerateHandler();
  const payload = { reportType: 'monthly_sales', format: 'pdf' };

  it('returns the id and format of the report it rendered', async () => {
    await expect(handler.generate(payload, contextFor(1))).resolves.toEqual({
      reportId: 'report-3',
      format: 'pdf',
      durationMs: expect.any(Number),
    });
  });

  describe('when the payload can never succeed', () => {
    it('fails without retries when `reportType` is missing, naming the field', async () => {
      await expect(handler.generate({ format: 'pdf' }, contextFor(1))).rejects.toThrow(
        new UnrecoverableJobError(
          'payload.reportType: expected a snake_case report name, got nothing (the field is missing)',
        ),
      );
    });

    it('fails without retries when `format` is not a string', async () => {
      await expect(handler.generate({ ...payload, format: 4 }, contextFor(1))).rejects.toThrow(
        'payload.format: expected one of pdf, csv, html, got an integer',
      );
    });
  });
});

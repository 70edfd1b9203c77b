import { Injectable } from '@nestjs/common';

import { JobContext } from '../worker/job-context.interface';
import { JobHandler } from '../worker/job-handler.decorator';
import { PayloadReader } from './payload-reader';
import { REPORT_FORMATS, SAMPLE_JOB, SIMULATED_WORK_MS } from './sample-jobs.constants';
import { performSimulatedWork } from './simulated-work';

/** `{ reportType: 'monthly_sales', format: 'pdf', simulateFailures?: number }` */
export interface ReportGeneratePayload {
  reportType: string;
  format: (typeof REPORT_FORMATS)[number];
}

export interface ReportGenerateResult {
  reportId: string;
  format: ReportGeneratePayload['format'];
  durationMs: number;
}

/** Renders (pretends to render) one report. */
@Injectable()
export class ReportGenerateHandler {
  @JobHandler(SAMPLE_JOB.reportGenerate)
  async generate(payload: unknown, context: JobContext): Promise<ReportGenerateResult> {
    const { format } = readReportGeneratePayload(payload);
    const durationMs = await performSimulatedWork(
      payload,
      context,
      SIMULATED_WORK_MS.report_generate,
    );

    return { reportId: `report-${context.id}`, format, durationMs };
  }
}

export function readReportGeneratePayload(payload: unknown): ReportGeneratePayload {
  const reader = new PayloadReader(payload);

  return {
    reportType: reader.matching('reportType', /^[a-z][a-z0-9_]*$/, 'a snake_case report name'),
    format: reader.oneOf('format', REPORT_FORMATS),
  };
}

import { Module } from '@nestjs/common';

import { CleanupTaskHandler } from './cleanup-task.handler';
import { DataJobsHandler } from './data-jobs.handler';
import { EmailDispatchHandler } from './email-dispatch.handler';
import { ReportGenerateHandler } from './report-generate.handler';

/**
 * The handlers of the six sample job types. The worker finds them by their `@JobHandler`
 * decorators, so nothing needs to be exported.
 */
@Module({
  providers: [EmailDispatchHandler, DataJobsHandler, ReportGenerateHandler, CleanupTaskHandler],
})
export class SampleJobsModule {}

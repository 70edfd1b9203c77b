import { Module } from '@nestjs/common';

import { DiagnosticJobsHandler } from './diagnostic-jobs.handler';

/** Handlers of the diagnostic job types; imported only when they are enabled. */
@Module({ providers: [DiagnosticJobsHandler] })
export class DiagnosticJobsModule {}

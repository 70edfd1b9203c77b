import { Module } from '@nestjs/common';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';

import { ApiValidationPipe } from './api-validation.pipe';
import { HealthController } from './health.controller';
import { JobsController } from './jobs.controller';
import { QueueExceptionFilter } from './queue-exception.filter';

/**
 * The HTTP API of the `api` role. Needs `QueueModule` imported at the root.
 *
 * Express's JSON parser is configured by the application, not here: Nest installs its default
 * (100 kB) before any module runs. Call
 * `app.useBodyParser('json', { limit: jsonBodyLimitBytes(config.payloadLimitBytes) })` before
 * `init()` or `listen()`, or payloads over 100 kB are refused with 413.
 */
@Module({
  controllers: [JobsController, HealthController],
  providers: [
    { provide: APP_PIPE, useClass: ApiValidationPipe },
    { provide: APP_FILTER, useClass: QueueExceptionFilter },
  ],
})
export class JobsApiModule {}

import { SetMetadata } from '@nestjs/common';

export const JOB_HANDLER_METADATA = 'ledger-queue:job-handler';

/**
 * Marks a provider method as the handler of one job type. The method receives the payload and
 * a `JobContext`; what it returns is the job's result, what it throws fails the attempt.
 *
 * @example
 * ```ts
 * @JobHandler('email_dispatch')
 * async send(payload: EmailPayload, context: JobContext) { ... }
 * ```
 */
export const JobHandler = (jobType: string): MethodDecorator =>
  SetMetadata(JOB_HANDLER_METADATA, jobType);

import { JobTypeDefinition } from '../queue/job-type.interface';

/** The job types of the original design, with their defaults. */
export const SAMPLE_JOB_TYPES: JobTypeDefinition[] = [
  { name: 'email_dispatch', attempts: 3, backoff: { strategy: 'exponential', delayMs: 200 } },
  { name: 'data_backup', attempts: 2, backoff: { strategy: 'fixed', delayMs: 500 } },
  { name: 'report_generate', attempts: 3, backoff: { strategy: 'fixed', delayMs: 200 } },
  { name: 'data_export', attempts: 3, backoff: { strategy: 'exponential', delayMs: 200 } },
  { name: 'data_migration', attempts: 1 },
  { name: 'cleanup_task', attempts: 3, backoff: { strategy: 'fixed', delayMs: 100 } },
];

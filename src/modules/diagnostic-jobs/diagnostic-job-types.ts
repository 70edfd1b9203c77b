import { JobTypeDefinition } from '../queue/job-type.interface';

/**
 * Job types for tests, fault drills and the benchmark. They exist only where the configuration
 * enables them (`DIAGNOSTIC_JOBS=true`), never by default.
 */
export const DIAGNOSTIC_JOB_TYPES: JobTypeDefinition[] = [
  { name: 'diag_noop' },
  { name: 'diag_sleep' },
  { name: 'diag_fail', attempts: 3 },
  { name: 'diag_crash' },
  // The same handlers in arrival order, to compare the two BullMQ paths.
  { name: 'diag_noop_fifo', prioritized: false },
  { name: 'diag_sleep_fifo', prioritized: false },
  { name: 'diag_fail_fifo', prioritized: false, attempts: 3 },
];

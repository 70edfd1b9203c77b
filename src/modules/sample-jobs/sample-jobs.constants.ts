/** The sample job types by name; each name is also its BullMQ queue's name. */
export const SAMPLE_JOB = {
  emailDispatch: 'email_dispatch',
  dataBackup: 'data_backup',
  dataExport: 'data_export',
  dataMigration: 'data_migration',
  reportGenerate: 'report_generate',
  cleanupTask: 'cleanup_task',
} as const;

export type SampleJobType = (typeof SAMPLE_JOB)[keyof typeof SAMPLE_JOB];

/** How long one attempt of each type pretends to work, from `min` to `max` milliseconds. */
export const SIMULATED_WORK_MS: Record<SampleJobType, { min: number; max: number }> = {
  email_dispatch: { min: 20, max: 60 },
  data_backup: { min: 80, max: 150 },
  data_export: { min: 50, max: 120 },
  data_migration: { min: 80, max: 150 },
  report_generate: { min: 60, max: 150 },
  cleanup_task: { min: 20, max: 80 },
};

export const REPORT_FORMATS = ['pdf', 'csv', 'html'] as const;
export const EXPORT_FORMATS = ['csv', 'json'] as const;

/** The optional payload field that makes the first attempts of any sample job fail. */
export const SIMULATE_FAILURES_FIELD = 'simulateFailures';

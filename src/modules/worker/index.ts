export * from './job-context.interface';
export * from './job-handler.decorator';
export * from './unrecoverable-job.error';
export * from './worker.module';

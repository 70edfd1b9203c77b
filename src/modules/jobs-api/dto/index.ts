export * from './enqueue-batch.dto';
export * from './enqueue-job.dto';

export * from './enqueue-request';
export * from './job-type.interface';
export * from './queue-module-options.interface';
export * from './queue.errors';
export * from './queue.module';
export * from './queue.service';
export { MAX_PRIORITY } from './queue.constants';

import { WorkerModuleOptions } from './worker-module-options.interface';

/** The job types this process runs: the configured ones, or the whole catalogue. */
export function jobTypesToRun(options: WorkerModuleOptions): string[] {
  return options.run ?? options.catalogue.map((definition) => definition.name);
}

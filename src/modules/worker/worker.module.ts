import { DynamicModule, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';

import { HandlerRegistry } from './handler-registry.service';
import { JobWorkerProcessor } from './job-worker.processor';
import { WORKER_MODULE_OPTIONS } from './worker.constants';
import { WorkerModuleOptions } from './worker-module-options.interface';

/** The worker role: import only in processes that should run jobs. */
@Module({})
export class WorkerModule {
  static forRoot(options: WorkerModuleOptions): DynamicModule {
    return {
      module: WorkerModule,
      imports: [DiscoveryModule],
      providers: [
        { provide: WORKER_MODULE_OPTIONS, useValue: options },
        HandlerRegistry,
        JobWorkerProcessor,
      ],
      exports: [JobWorkerProcessor],
    };
  }
}

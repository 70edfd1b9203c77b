import { DynamicModule, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';

import { HandlerRegistry } from './handler-registry.service';
import { JobWorkerProcessor } from './job-worker.processor';
import { QuarantineHost } from './quarantine-host.service';
import { QuarantineRunner } from './quarantine-runner.service';
import { WORKER_MODULE_OPTIONS } from './worker.constants';
import { WorkerModuleOptions } from './worker-module-options.interface';

/**
 * The worker role: import only in processes that should run jobs. In a worker's quarantine
 * child it runs only the jobs its parent sends, without BullMQ.
 */
@Module({})
export class WorkerModule {
  static forRoot(options: WorkerModuleOptions): DynamicModule {
    const runners = options.quarantineChild
      ? [QuarantineHost]
      : [JobWorkerProcessor, QuarantineRunner];

    return {
      module: WorkerModule,
      imports: [DiscoveryModule],
      providers: [
        { provide: WORKER_MODULE_OPTIONS, useValue: options },
        HandlerRegistry,
        ...runners,
      ],
    };
  }
}

import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';

import { JobHandlerFunction } from './job-context.interface';
import { JOB_HANDLER_METADATA } from './job-handler.decorator';

interface DiscoveredHandler {
  owner: string;
  run: JobHandlerFunction;
}

/** Finds every `@JobHandler` method at boot and checks that each job type has exactly one. */
@Injectable()
export class HandlerRegistry implements OnModuleInit {
  private readonly logger = new Logger(HandlerRegistry.name);
  private readonly handlers = new Map<string, DiscoveredHandler[]>();

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
  ) {}

  onModuleInit(): void {
    for (const wrapper of this.discovery.getProviders()) {
      const instance: unknown = wrapper.instance;
      if (!instance || typeof instance !== 'object') {
        continue;
      }

      this.collect(instance as Record<string, unknown>);
    }
  }

  /**
   * Throws, naming every problem, unless each of `jobTypes` has exactly one handler.
   */
  assertExactlyOneHandler(jobTypes: string[]): void {
    const problems: string[] = [];

    for (const jobType of jobTypes) {
      const found = this.handlers.get(jobType) ?? [];
      if (found.length === 0) {
        problems.push(`job type "${jobType}" has no @JobHandler; add one to a provider`);
      } else if (found.length > 1) {
        const owners = found.map((handler) => handler.owner).join(', ');
        problems.push(`job type "${jobType}" has ${found.length} handlers (${owners}); keep one`);
      }
    }

    if (problems.length > 0) {
      throw new Error(`Worker cannot start:\n  - ${problems.join('\n  - ')}`);
    }
  }

  handlerFor(jobType: string): JobHandlerFunction {
    const [handler] = this.handlers.get(jobType) ?? [];
    if (!handler) {
      throw new Error(`No handler for job type "${jobType}"`);
    }

    return handler.run;
  }

  private collect(instance: Record<string, unknown>): void {
    const prototype = Object.getPrototypeOf(instance) as object | null;

    for (const methodName of this.scanner.getAllMethodNames(prototype)) {
      const method = instance[methodName];
      if (typeof method !== 'function') {
        continue;
      }

      const jobType: unknown = Reflect.getMetadata(JOB_HANDLER_METADATA, method);
      if (typeof jobType !== 'string') {
        continue;
      }

      const owner = `${instance.constructor.name}.${methodName}`;
      const found = this.handlers.get(jobType) ?? [];
      found.push({ owner, run: (method as JobHandlerFunction).bind(instance) });
      this.handlers.set(jobType, found);
      this.logger.verbose({ message: 'registered job handler', jobType, owner });
    }
  }
}

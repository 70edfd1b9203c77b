import { getQueueToken } from '@nestjs/bullmq';
import { DynamicModule, Global, Module, ModuleMetadata, Provider } from '@nestjs/common';

import { AfterCommitDispatchSubscriber } from './after-commit-dispatch.subscriber';
import { JobDispatcher } from './job-dispatcher.service';
import { JobLedgerRepository } from './job-ledger.repository';
import { JobTypeDefinition } from './job-type.interface';
import { LedgerBacklogGate } from './ledger-backlog.gate';
import { QueueRegistry } from './queue-registry.service';
import {
  DEFAULT_EVENTS_MAX_LEN,
  JOB_TYPE_PATTERN,
  MAX_ATTEMPTS,
  PRODUCER_BACKLOG_SHARE,
  QUEUE_MODULE_OPTIONS,
} from './queue.constants';
import { QueueConnectionOptions, QueueModuleOptions } from './queue-module-options.interface';
import { QueueService } from './queue.service';

/** `QueueModule.forRootAsync` options: the catalogue is code, the connection may be config. */
export interface QueueModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  jobTypes: JobTypeDefinition[];
  inject?: Array<string | symbol | (abstract new (...args: never[]) => unknown)>;
  useFactory: (...args: never[]) => QueueConnectionOptions | Promise<QueueConnectionOptions>;
}

const PROVIDERS = [
  QueueRegistry,
  JobLedgerRepository,
  JobDispatcher,
  AfterCommitDispatchSubscriber,
  LedgerBacklogGate,
  QueueService,
];

/**
 * Import once in the root module to inject `QueueService`. Needs a TypeORM connection whose
 * entities include `LEDGER_ENTITIES`.
 */
@Global()
@Module({})
export class QueueModule {
  static forRoot(
    options: QueueConnectionOptions & { jobTypes: JobTypeDefinition[] },
  ): DynamicModule {
    return QueueModule.build(
      [{ provide: QUEUE_MODULE_OPTIONS, useValue: resolveOptions(options, options.jobTypes) }],
      options.jobTypes,
    );
  }

  static forRootAsync(options: QueueModuleAsyncOptions): DynamicModule {
    const optionsProvider: Provider = {
      provide: QUEUE_MODULE_OPTIONS,
      inject: options.inject ?? [],
      useFactory: async (...args: never[]) =>
        resolveOptions(await options.useFactory(...args), options.jobTypes),
    };

    return {
      ...QueueModule.build([optionsProvider], options.jobTypes),
      imports: options.imports ?? [],
    };
  }

  private static build(optionProviders: Provider[], jobTypes: JobTypeDefinition[]): DynamicModule {
    // Each type's BullMQ queue under @nestjs/bullmq's token, so `@InjectQueue('type')` gives
    // read access (counts, metrics). Enqueue through QueueService: a job added here directly
    // has no ledger row.
    const queueProviders: Provider[] = jobTypes.map((definition) => ({
      provide: getQueueToken(definition.name),
      inject: [QueueRegistry],
      useFactory: (registry: QueueRegistry) => registry.queue(definition.name),
    }));

    return {
      module: QueueModule,
      providers: [...optionProviders, ...PROVIDERS, ...queueProviders],
      exports: [QUEUE_MODULE_OPTIONS, ...PROVIDERS, ...queueProviders],
    };
  }
}

function resolveOptions(
  connection: QueueConnectionOptions,
  jobTypes: JobTypeDefinition[],
): QueueModuleOptions {
  assertCatalogue(jobTypes);
  const eventsMaxLen = connection.eventsMaxLen ?? DEFAULT_EVENTS_MAX_LEN;
  const producerLedgerBacklogLimit =
    connection.producerLedgerBacklogLimit ?? Math.floor(eventsMaxLen * PRODUCER_BACKLOG_SHARE);
  assertBacklogLimit(producerLedgerBacklogLimit, eventsMaxLen);

  return {
    redisUrl: connection.redisUrl,
    prefix: connection.prefix ?? 'lq',
    payloadLimitBytes: connection.payloadLimitBytes ?? 256 * 1024,
    eventsMaxLen,
    dispatchGraceMs: connection.dispatchGraceMs ?? 10_000,
    dispatchTimeoutMs: connection.dispatchTimeoutMs ?? 2_000,
    enqueueWhenRedisDown: connection.enqueueWhenRedisDown ?? 'accept',
    producerLedgerBacklogLimit,
    jobTypes,
  };
}

function assertBacklogLimit(limit: number, eventsMaxLen: number): void {
  if (!Number.isInteger(limit) || limit < 0 || limit >= eventsMaxLen) {
    const range = `from 0 to eventsMaxLen - 1 (${eventsMaxLen - 1})`;
    throw new Error(`producerLedgerBacklogLimit must be an integer ${range}, got ${limit}`);
  }
}

/** A wrong catalogue is a programming error: refuse to boot, saying what to fix. */
function assertCatalogue(jobTypes: JobTypeDefinition[]): void {
  const seen = new Set<string>();

  for (const definition of jobTypes) {
    if (!JOB_TYPE_PATTERN.test(definition.name)) {
      throw new Error(
        `Job type "${definition.name}": expected lower-case letters, digits and _ (max 100), starting with a letter`,
      );
    }

    if (seen.has(definition.name)) {
      throw new Error(`Job type "${definition.name}" is declared twice; declare each type once`);
    }

    const attempts = definition.attempts ?? 1;
    if (!Number.isInteger(attempts) || attempts < 1 || attempts > MAX_ATTEMPTS) {
      throw new Error(
        `Job type "${definition.name}": attempts must be an integer from 1 to ${MAX_ATTEMPTS}`,
      );
    }

    if (definition.prioritized !== undefined && typeof definition.prioritized !== 'boolean') {
      throw new Error(
        `Job type "${definition.name}": prioritized must be true or false, got ${String(definition.prioritized)}`,
      );
    }

    seen.add(definition.name);
  }
}

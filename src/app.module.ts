import { DynamicModule, Module } from '@nestjs/common';

import { AppConfig } from './modules/config/app-config';
import { ConfigModule } from './modules/config/config.module';
import { DatabaseModule } from './modules/database/database.module';
import { DiagnosticJobsModule } from './modules/diagnostic-jobs/diagnostic-jobs.module';
import { DIAGNOSTIC_JOB_TYPES } from './modules/diagnostic-jobs/diagnostic-job-types';
import { JobsApiModule } from './modules/jobs-api/jobs-api.module';
import { LedgerModule } from './modules/ledger/ledger.module';
import { QueueModule } from './modules/queue/queue.module';
import { JobTypeDefinition } from './modules/queue/job-type.interface';
import { SampleJobsModule } from './modules/sample-jobs/sample-jobs.module';
import { SAMPLE_JOB_TYPES } from './modules/sample-jobs/sample-job-types';
import { WorkerModule } from './modules/worker/worker.module';
import {
  ApplicationEntry,
  QuarantineOptions,
  WorkerModuleOptions,
} from './modules/worker/worker-module-options.interface';

export interface AppModuleOptions {
  config: AppConfig;
  /** The catalogue; the sample job types unless told otherwise. */
  jobTypes?: JobTypeDefinition[];
  /** Extra modules, such as test handlers. */
  imports?: DynamicModule['imports'];
  /**
   * The script that started this process (`dist/src/main.js`): the worker role forks it to run
   * suspect jobs in quarantine. Without it, quarantine is off.
   */
  entry?: ApplicationEntry;
}

/**
 * Assembles the roles this process runs. The worker role needs no database, so a worker-only
 * process opens no MySQL connection at all.
 */
@Module({})
export class AppModule {
  static forRoles(options: AppModuleOptions): DynamicModule {
    const { config } = options;
    const jobTypes = [
      ...(options.jobTypes ?? SAMPLE_JOB_TYPES),
      ...(config.diagnosticJobs ? DIAGNOSTIC_JOB_TYPES : []),
    ];
    const needsDatabase = config.roles.includes('api') || config.roles.includes('ledger');
    const imports: NonNullable<DynamicModule['imports']> = [ConfigModule.forRoot(config)];

    if (needsDatabase) {
      imports.push(
        DatabaseModule.forRoot(),
        QueueModule.forRoot({ ...queueOptions(config), jobTypes }),
      );
    }

    if (config.roles.includes('api')) {
      imports.push(JobsApiModule);
    }

    if (config.roles.includes('ledger')) {
      imports.push(
        LedgerModule.forRoot({
          reconcileIntervalMs: config.reconcileIntervalMs,
          dispatchIntervalMs: config.dispatchIntervalMs,
          batchWaitMs: config.ledgerBatchWaitMs,
          cursorSaveDeferMs: config.ledgerCursorSaveDeferMs,
        }),
      );
    }

    if (config.roles.includes('worker')) {
      imports.push(
        SampleJobsModule,
        WorkerModule.forRoot(workerOptions(config, jobTypes, options.entry)),
      );
      if (config.diagnosticJobs) {
        imports.push(DiagnosticJobsModule);
      }
    }

    return { module: AppModule, imports: [...imports, ...(options.imports ?? [])] };
  }
}

function queueOptions(config: AppConfig) {
  return {
    redisUrl: config.redisUrl,
    prefix: config.queuePrefix,
    payloadLimitBytes: config.payloadLimitBytes,
    eventsMaxLen: config.eventsMaxLen,
    dispatchGraceMs: config.dispatchGraceMs,
    dispatchTimeoutMs: config.dispatchTimeoutMs,
    enqueueWhenRedisDown: config.enqueueWhenRedisDown,
    producerLedgerBacklogLimit: config.producerLedgerBacklogLimit,
  };
}

function workerOptions(
  config: AppConfig,
  jobTypes: JobTypeDefinition[],
  entry: ApplicationEntry | undefined,
): WorkerModuleOptions {
  return {
    redisUrl: config.redisUrl,
    prefix: config.queuePrefix,
    catalogue: jobTypes,
    run: config.workerJobTypes,
    concurrency: config.workerConcurrency,
    concurrencyByType: config.workerConcurrencyByType,
    workerName: config.workerName,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    lockDurationMs: config.workerLockDurationMs,
    stalledIntervalMs: config.workerStalledIntervalMs,
    redactErrors: config.redactErrorPayloads,
    quarantine: quarantineOptions(config, entry),
    maxStalledCount: config.workerMaxStalledCount,
    quarantineChild: config.workerQuarantineChild,
    ledgerBacklogLimit: config.workerLedgerBacklogLimit,
  };
}

function quarantineOptions(
  config: AppConfig,
  entry: ApplicationEntry | undefined,
): QuarantineOptions | undefined {
  if (config.workerQuarantine === 'off' || !entry || config.workerQuarantineChild) {
    return undefined;
  }

  return {
    entry,
    childEnv: { ROLES: 'worker', WORKER_QUARANTINE_CHILD: 'true' },
    runTimeoutMs: config.workerQuarantineTimeoutMs,
    processes: config.workerQuarantineProcesses,
  };
}

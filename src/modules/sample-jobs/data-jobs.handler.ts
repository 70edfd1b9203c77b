import { Injectable } from '@nestjs/common';

import { JobContext } from '../worker/job-context.interface';
import { JobHandler } from '../worker/job-handler.decorator';
import { UnrecoverableJobError } from '../worker/unrecoverable-job.error';
import { PayloadReader } from './payload-reader';
import { EXPORT_FORMATS, SAMPLE_JOB, SIMULATED_WORK_MS } from './sample-jobs.constants';
import { performSimulatedWork } from './simulated-work';

/** `{ database: 'users_db', target: 's3://backups/' }` */
export interface DataBackupPayload {
  database: string;
  target: string;
}

/** `{ format: 'csv', table: 'orders' }` */
export interface DataExportPayload {
  format: (typeof EXPORT_FORMATS)[number];
  table: string;
}

/** `{ source: 'legacy_db', destination: 'new_db' }` */
export interface DataMigrationPayload {
  source: string;
  destination: string;
}

export interface DataJobResult {
  /** How many rows the job pretends to have copied. */
  rows: number;
  durationMs: number;
}

/** Backs up, exports and migrates data (all three simulated). */
@Injectable()
export class DataJobsHandler {
  @JobHandler(SAMPLE_JOB.dataBackup)
  async backUp(payload: unknown, context: JobContext): Promise<DataJobResult> {
    readDataBackupPayload(payload);

    return this.copyRows(payload, context, SIMULATED_WORK_MS.data_backup);
  }

  @JobHandler(SAMPLE_JOB.dataExport)
  async export(payload: unknown, context: JobContext): Promise<DataJobResult> {
    readDataExportPayload(payload);

    return this.copyRows(payload, context, SIMULATED_WORK_MS.data_export);
  }

  @JobHandler(SAMPLE_JOB.dataMigration)
  async migrate(payload: unknown, context: JobContext): Promise<DataJobResult> {
    readDataMigrationPayload(payload);

    return this.copyRows(payload, context, SIMULATED_WORK_MS.data_migration);
  }

  private async copyRows(
    payload: unknown,
    context: JobContext,
    work: { min: number; max: number },
  ): Promise<DataJobResult> {
    const durationMs = await performSimulatedWork(payload, context, work);

    // A plausible row count that grows with the time spent.
    return { rows: durationMs * 100, durationMs };
  }
}

export function readDataBackupPayload(payload: unknown): DataBackupPayload {
  const reader = new PayloadReader(payload);

  return { database: reader.string('database'), target: reader.string('target') };
}

export function readDataExportPayload(payload: unknown): DataExportPayload {
  const reader = new PayloadReader(payload);

  return { format: reader.oneOf('format', EXPORT_FORMATS), table: reader.string('table') };
}

export function readDataMigrationPayload(payload: unknown): DataMigrationPayload {
  const reader = new PayloadReader(payload);
  const source = reader.string('source');
  const destination = reader.string('destination');

  if (source === destination) {
    throw new UnrecoverableJobError(
      'payload.destination: expected a database other than payload.source, got the same one',
    );
  }

  return { source, destination };
}

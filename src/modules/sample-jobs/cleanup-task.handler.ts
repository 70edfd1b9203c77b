import { Injectable } from '@nestjs/common';

import { JobContext } from '../worker/job-context.interface';
import { JobHandler } from '../worker/job-handler.decorator';
import { PayloadReader } from './payload-reader';
import { SAMPLE_JOB, SIMULATED_WORK_MS } from './sample-jobs.constants';
import { performSimulatedWork } from './simulated-work';

/** `{ olderThanDays: 30, simulateFailures?: number }` */
export interface CleanupTaskPayload {
  olderThanDays: number;
}

export interface CleanupTaskResult {
  /** How many records the task pretends to have removed. */
  removed: number;
  durationMs: number;
}

/** Removes (pretends to remove) records older than the given number of days. */
@Injectable()
export class CleanupTaskHandler {
  @JobHandler(SAMPLE_JOB.cleanupTask)
  async clean(payload: unknown, context: JobContext): Promise<CleanupTaskResult> {
    const { olderThanDays } = readCleanupTaskPayload(payload);
    const durationMs = await performSimulatedWork(payload, context, SIMULATED_WORK_MS.cleanup_task);

    return { removed: Math.ceil(durationMs / olderThanDays), durationMs };
  }
}

export function readCleanupTaskPayload(payload: unknown): CleanupTaskPayload {
  return { olderThanDays: new PayloadReader(payload).integer('olderThanDays', 1) };
}

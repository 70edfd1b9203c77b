import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import { JobContext } from '../worker/job-context.interface';
import { PayloadReader } from './payload-reader';
import { SIMULATE_FAILURES_FIELD } from './sample-jobs.constants';

/** The transient failure a sample job was asked to simulate; BullMQ retries it. */
export class SimulatedTransientError extends Error {
  constructor(context: Pick<JobContext, 'attempt' | 'maxAttempts'>) {
    super(`simulated transient failure (attempt ${context.attempt} of ${context.maxAttempts})`);
    this.name = 'SimulatedTransientError';
  }
}

/**
 * Pretends to work for a random time from `workMs.min` to `workMs.max`, then fails the attempt
 * while `context.attempt` is at most the payload's `simulateFailures` (an integer, 0 by
 * default). Stops early, rejecting with an `AbortError`, once `context.signal` aborts.
 * Resolves to the time worked, in milliseconds.
 */
export async function performSimulatedWork(
  payload: unknown,
  context: JobContext,
  workMs: { min: number; max: number },
): Promise<number> {
  // Read before waiting, so that a bad value fails the job without spending the work time.
  const simulatedFailures =
    new PayloadReader(payload).optionalInteger(SIMULATE_FAILURES_FIELD, 0) ?? 0;
  const duration = randomInt(workMs.min, workMs.max + 1);

  await sleep(duration, undefined, { signal: context.signal });

  if (context.attempt <= simulatedFailures) {
    throw new SimulatedTransientError(context);
  }

  return duration;
}

import type { BackoffStrategy } from 'bullmq';

import { startsBeforeOf } from './queue.constants';

/**
 * The backoff type of an exponential job sent again after Redis lost it. BullMQ's own
 * `exponential` grows with its attempt count, which starts at zero on every send; this one grows
 * with the attempts the ledger had counted as well. Workers know it through `resumedBackoff`.
 */
export const RESUMED_EXPONENTIAL_BACKOFF = 'exponential-resumed';

/**
 * Workers' custom backoff strategy: the delay before the next attempt of a job sent again, as
 * BullMQ's `exponential` would give it had the job never left Redis (`delay * 2^(n - 1)` for the
 * n-th failed attempt counted over every send, with the same jitter).
 *
 * BullMQ calls it for every type it does not know. A type the ledger never sends (a job added
 * to Redis by other means) waits its plain `delay`: a throw here would leave the job active
 * until the stall check, and a refusal (-1) would drop its remaining attempts.
 */
export const resumedBackoff: BackoffStrategy = (attemptsMade, type, _error, job) => {
  const backoff = job?.opts.backoff;
  const delay = typeof backoff === 'object' ? (backoff.delay ?? 0) : 0;
  if (type !== RESUMED_EXPONENTIAL_BACKOFF || !job) {
    return delay;
  }

  const jitter = typeof backoff === 'object' ? (backoff.jitter ?? 0) : 0;
  const failedAttempts = startsBeforeOf(job.name) + attemptsMade;

  return exponentialDelay(delay, jitter, failedAttempts);
};

/** The longest delay, then a random one up to `jitter` of it shorter. */
export function exponentialDelay(delay: number, jitter: number, failedAttempts: number): number {
  const longest = Math.round(2 ** Math.max(0, failedAttempts - 1) * delay);

  return jitter > 0 ? Math.floor(longest * (1 - jitter * Math.random())) : longest;
}

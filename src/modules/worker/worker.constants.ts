export const WORKER_MODULE_OPTIONS = Symbol('WORKER_MODULE_OPTIONS');

/** Longer handler error messages are cut: the ledger records a reason, the logs keep the rest. */
export const MAX_ERROR_MESSAGE_LENGTH = 1000;

/** How long pausing or force-closing the workers may take; Redis may be unreachable. */
export const FORCED_CLOSE_WAIT_MS = 2000;

/** How long a quarantine process may take to boot the application before it is killed. */
export const QUARANTINE_START_TIMEOUT_MS = 30_000;

/** How long a quarantine process stays up without a job before it is asked to exit. */
export const QUARANTINE_IDLE_TIMEOUT_MS = 60_000;

/**
 * BullMQ's stall limit when suspect jobs run in quarantine. A job that shares a worker with a
 * poison job loses that worker once per new poison job, while the poison job itself kills the
 * worker only once (later it runs in quarantine). BullMQ's default of 1 would fail an innocent
 * job after two such crashes; 3 lets it through three.
 */
export const QUARANTINE_MAX_STALLED_COUNT = 3;

/** How often a worker looks at how far the ledger is behind on its queues' event streams. */
export const BACKLOG_CHECK_INTERVAL_MS = 250;

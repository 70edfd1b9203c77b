export const WORKER_MODULE_OPTIONS = Symbol('WORKER_MODULE_OPTIONS');

/** Longer handler error messages are cut: the ledger records a reason, the logs keep the rest. */
export const MAX_ERROR_MESSAGE_LENGTH = 1000;

/** How long a forced close may take once the shutdown timeout has passed. */
export const FORCED_CLOSE_WAIT_MS = 2000;

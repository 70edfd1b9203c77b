export const WORKER_MODULE_OPTIONS = Symbol('WORKER_MODULE_OPTIONS');

/** Longer handler error messages are cut: the ledger records a reason, the logs keep the rest. */
export const MAX_ERROR_MESSAGE_LENGTH = 1000;

/** How long pausing or force-closing the workers may take; Redis may be unreachable. */
export const FORCED_CLOSE_WAIT_MS = 2000;

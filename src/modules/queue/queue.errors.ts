/** A producer's request that breaks a rule; nothing was written. */
export class JobValidationError extends Error {
  constructor(
    /** The path of the offending field, such as `priority` or `jobs[3].payload`. */
    readonly field: string,
    /** What the field must be, in words. */
    readonly rule: string,
    got?: string,
  ) {
    super(`${field}: ${rule}${got === undefined ? '' : `, got ${got}`}`);
    this.name = 'JobValidationError';
  }
}

/**
 * The ledger could not be written or read (database unreachable or refusing). After a failed
 * write nothing was sent to Redis.
 */
export class LedgerUnavailableError extends Error {
  constructor(cause: unknown, message = 'the job ledger is unavailable; the job was not accepted') {
    super(message, { cause });
    this.name = 'LedgerUnavailableError';
  }
}

/**
 * Redis does not answer and the module is configured to refuse jobs then
 * (`enqueueWhenRedisDown: 'refuse'`); nothing was written.
 */
export class RedisUnavailableError extends Error {
  constructor() {
    super('the queue (Redis) is unavailable; the job was not accepted');
    this.name = 'RedisUnavailableError';
  }
}

/**
 * The ledger has left too many entries of the queue's event stream unread
 * (`producerLedgerBacklogLimit`); nothing was written. More jobs now could push entries it has
 * not recorded out of the stream, so the producer should retry once it has caught up.
 */
export class LedgerBehindError extends Error {
  constructor(
    readonly queue: string,
    readonly unreadEntries: number,
    readonly limit: number,
  ) {
    super(
      `the ledger is ${unreadEntries} events behind on queue "${queue}" (limit ${limit}); ` +
        'the job was not accepted, retry later',
    );
    this.name = 'LedgerBehindError';
  }
}

import { JobTypeDefinition } from './job-type.interface';

/** Settings of `QueueModule` that may come from configuration at run time. */
export interface QueueConnectionOptions {
  /** `redis://[user:password@]host:port[/db]` */
  redisUrl: string;
  /** Redis key prefix of every queue. @defaultValue 'lq' */
  prefix?: string;
  /** Largest accepted payload, as JSON bytes. @defaultValue 262144 (256 KiB) */
  payloadLimitBytes?: number;
  /**
   * Length each queue's event stream is trimmed to; the ledger repairs if it falls further
   * behind. @defaultValue 100000
   */
  eventsMaxLen?: number;
  /**
   * How long after its commit a job may still be sent to Redis by the process that enqueued it.
   * Older undispatched rows are left to the ledger's dispatcher, so that the two never race.
   * @defaultValue 10000
   */
  dispatchGraceMs?: number;
  /** How long an enqueue waits for Redis before leaving the job to the ledger's dispatcher. @defaultValue 2000 */
  dispatchTimeoutMs?: number;
  /**
   * With Redis down, `accept` commits the row and lets the ledger send the job when Redis
   * returns; `refuse` throws `RedisUnavailableError` and writes nothing.
   * @defaultValue 'accept'
   */
  enqueueWhenRedisDown?: 'accept' | 'refuse';
  /**
   * Unread entries of a queue's event stream (the ledger's backlog) at which new jobs of that
   * queue are refused with `LedgerBehindError`, so that trimming cannot outrun the ledger; 0
   * never refuses. Must be below `eventsMaxLen`. @defaultValue 80% of `eventsMaxLen`
   */
  producerLedgerBacklogLimit?: number;
}

/** Everything `QueueModule` needs, resolved. */
export interface QueueModuleOptions extends Required<QueueConnectionOptions> {
  jobTypes: JobTypeDefinition[];
}

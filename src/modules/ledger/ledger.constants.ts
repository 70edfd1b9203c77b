import { createHash } from 'node:crypto';

/**
 * Most stream entries read from one queue per batch. Full batches happen only when the ledger
 * is behind, and then larger ones catch up faster: with two worker processes on two cores,
 * 6,000 instead of 2,000 ended the ledger 0.47 to 0.69 s behind the drain instead of 0.82 to
 * 1.17 s (two A/B pairs of `BENCH_WORKERS=2 npm run bench`). The read script holds Redis for
 * about 3 us per entry, so a full batch blocks it for up to about 20 ms.
 */
export const PROJECTOR_BATCH_SIZE = 6000;
/**
 * After a batch that was not full, how long from its start the projector lets events gather.
 * Every batch costs a transaction and a dozen round trips whatever its size; at 1,000 jobs/s,
 * waiting 20 ms instead of reading again at once took the ledger's CPU per job from about 300
 * to 270 us and MariaDB's from 320 to 280, with the lag's p99 unchanged (about 120 ms).
 */
export const PROJECTOR_BATCH_WAIT_MS = 20;
/**
 * How long the cursors of batches that changed no row may stay unsaved. During an enqueue burst
 * most batches hold only `added` and first `waiting` events; committing a cursor transaction for
 * each of them cost MariaDB a log flush per batch. Reading such events again after a crash or a
 * change of projector changes nothing, so their cursors are saved with the next batch that writes,
 * when the streams fall idle, or after this long.
 */
export const CURSOR_SAVE_DEFER_MS = 1000;
/** How often at most the projector tells the workers how far it has read the streams. */
export const PROGRESS_PUBLISH_MS = 100;
/** How long an idle projector blocks on the streams before looking again. */
export const PROJECTOR_IDLE_BLOCK_MS = 1000;
/**
 * The MySQL named lock that elects the one active projector. Named locks are server-wide, so
 * the name carries the database and the Redis prefix: two ledgers on one server never collide.
 */
export function projectorLockName(database: string, prefix: string): string {
  const digest = createHash('sha256').update(`${database}\u0000${prefix}`).digest('hex');

  return `ledger_projector_${digest.slice(0, 40)}`;
}
export const LEADERSHIP_RETRY_MS = 2000;
/** How often the active projector looks for an operator's reconciliation request. */
export const RECONCILE_REQUEST_POLL_MS = 250;
/** Rows per chunk when the ledger repairs from the jobs' state in Redis. */
export const REPAIR_CHUNK_SIZE = 500;
/** Most rows the ledger dispatcher (and the finished-job sweep) looks at per queue per run. */
export const DISPATCH_SCAN_LIMIT = 500;
/**
 * Most pages the ledger dispatcher checks per run. Jobs waiting in Redis look undispatched to it
 * (their rows get `dispatched_at` when they start), so it checks a long backlog in turns; this
 * bounds what each turn costs Redis and the database. Rows it has not reached yet are also
 * covered by the periodic reconciliation.
 */
export const DISPATCH_PAGES_PER_RUN = 2;

export const LEDGER_MODULE_OPTIONS = Symbol('LEDGER_MODULE_OPTIONS');

/** The Redis key whose value must match `ledger_cursor.epoch`; its loss means Redis lost data. */
export function epochMarkerKey(prefix: string, queueName: string): string {
  return `${prefix}:${queueName}:ledger-epoch`;
}

/**
 * The note of the history row that marks an unfinished job whose Redis data was lost: starts
 * made after its last recorded transition may be missing from its `attempt_count`.
 */
export const REDIS_DATA_LOSS_NOTE =
  'Redis lost its data while this job was unfinished: starts after the last recorded ' +
  'transition, if any, are not counted in attempt_count';

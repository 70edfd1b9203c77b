export interface LedgerModuleOptions {
  /** Most events per queue per batch. */
  batchSize: number;
  /** Idle wait on the streams between batches, in milliseconds. */
  idleBlockMs: number;
  /** How often the dispatcher looks for rows that have to be sent (again), in milliseconds. */
  dispatchIntervalMs: number;
  /** How often the active projector compares unfinished rows with Redis, in milliseconds. */
  reconcileIntervalMs: number;
}

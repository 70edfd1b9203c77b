export interface LedgerModuleOptions {
  /** Most events per queue per batch. */
  batchSize: number;
  /** Idle wait on the streams between batches, in milliseconds. */
  idleBlockMs: number;
  /**
   * After a batch that was not full, how long from its start the projector lets events gather
   * before it reads again, in milliseconds; 0 reads again at once.
   */
  batchWaitMs: number;
  /**
   * How long the cursors of batches that changed no row may wait to be saved, in milliseconds;
   * 0 saves them with every batch.
   */
  cursorSaveDeferMs: number;
  /** How often the dispatcher looks for rows that have to be sent (again), in milliseconds. */
  dispatchIntervalMs: number;
  /** How often the active projector compares unfinished rows with Redis, in milliseconds. */
  reconcileIntervalMs: number;
}

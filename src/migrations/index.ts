import { CreateJobLedger1764720000000 } from './1764720000000-CreateJobLedger';
import { AddIdempotencyKey1764806400000 } from './1764806400000-AddIdempotencyKey';
import { DropUnreadJobQueueIndexes1764979200000 } from './1764979200000-DropUnreadJobQueueIndexes';

/** Every migration, in order. Listed by class so that bundled and test builds find them. */
export const LEDGER_MIGRATIONS = [
  CreateJobLedger1764720000000,
  AddIdempotencyKey1764806400000,
  DropUnreadJobQueueIndexes1764979200000,
];

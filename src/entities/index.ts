import { JobTransitionEntity } from './job-transition.entity';
import { JobEntity } from './job.entity';
import { LedgerCursorEntity } from './ledger-cursor.entity';

export { JobEntity, JobTransitionEntity, LedgerCursorEntity };
export * from './job-status';

export const LEDGER_ENTITIES = [JobEntity, JobTransitionEntity, LedgerCursorEntity];

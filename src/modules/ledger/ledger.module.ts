import { DynamicModule, Module } from '@nestjs/common';

import { LedgerDispatcher } from './ledger-dispatcher.service';
import { LedgerProjector } from './ledger-projector.service';
import {
  CURSOR_SAVE_DEFER_MS,
  LEDGER_MODULE_OPTIONS,
  PROJECTOR_BATCH_SIZE,
  PROJECTOR_BATCH_WAIT_MS,
  PROJECTOR_IDLE_BLOCK_MS,
} from './ledger.constants';
import { LedgerModuleOptions } from './ledger-module-options.interface';

/**
 * The ledger role: the projector that mirrors queue events into `job_queue`, and the
 * dispatcher that sends committed rows Redis never received. Needs `QueueModule`.
 */
@Module({})
export class LedgerModule {
  static forRoot(options: Partial<LedgerModuleOptions> = {}): DynamicModule {
    const resolved: LedgerModuleOptions = {
      batchSize: options.batchSize ?? PROJECTOR_BATCH_SIZE,
      idleBlockMs: options.idleBlockMs ?? PROJECTOR_IDLE_BLOCK_MS,
      batchWaitMs: options.batchWaitMs ?? PROJECTOR_BATCH_WAIT_MS,
      cursorSaveDeferMs: options.cursorSaveDeferMs ?? CURSOR_SAVE_DEFER_MS,
      dispatchIntervalMs: options.dispatchIntervalMs ?? 2000,
      reconcileIntervalMs: options.reconcileIntervalMs ?? 30_000,
    };

    return {
      module: LedgerModule,
      providers: [
        { provide: LEDGER_MODULE_OPTIONS, useValue: resolved },
        LedgerProjector,
        LedgerDispatcher,
      ],
      exports: [LedgerProjector, LedgerDispatcher],
    };
  }
}

import { Injectable, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import {
  DataSource,
  EntitySubscriberInterface,
  QueryRunner,
  TransactionCommitEvent,
  TransactionRollbackEvent,
} from 'typeorm';

import { JobEntity } from '../../entities';
import { JobDispatcher } from './job-dispatcher.service';

interface PendingDispatch {
  rows: JobEntity[];
  /** The transaction depth the rows were written at; a rollback to above it discards them. */
  depth: number;
}

/**
 * Holds jobs that were enqueued inside a caller's transaction and sends them only once the
 * outermost transaction commits. A rollback, also of a savepoint around the enqueue, drops them.
 */
@Injectable()
export class AfterCommitDispatchSubscriber implements EntitySubscriberInterface, OnModuleInit {
  private readonly pending = new WeakMap<QueryRunner, PendingDispatch[]>();

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly dispatcher: JobDispatcher,
  ) {}

  onModuleInit(): void {
    this.dataSource.subscribers.push(this);
  }

  /** Holds `rows` until `queryRunner`'s transaction commits. */
  defer(queryRunner: QueryRunner, rows: JobEntity[]): void {
    const list = this.pending.get(queryRunner) ?? [];
    list.push({ rows, depth: transactionDepth(queryRunner) });
    this.pending.set(queryRunner, list);
  }

  async afterTransactionCommit(event: TransactionCommitEvent): Promise<void> {
    const list = this.pending.get(event.queryRunner);
    if (!list) {
      return;
    }

    if (event.queryRunner.isTransactionActive) {
      // A savepoint was released: its jobs now belong to the enclosing transaction.
      const depth = transactionDepth(event.queryRunner);
      list.forEach((entry) => (entry.depth = Math.min(entry.depth, depth)));

      return;
    }

    this.pending.delete(event.queryRunner);
    const committedAt = performance.now();
    await this.dispatcher.dispatchFresh(
      list.flatMap((entry) => entry.rows),
      committedAt,
    );
  }

  afterTransactionRollback(event: TransactionRollbackEvent): void {
    const list = this.pending.get(event.queryRunner);
    if (!list) {
      return;
    }

    const depth = event.queryRunner.isTransactionActive ? transactionDepth(event.queryRunner) : 0;
    const kept = list.filter((entry) => entry.depth <= depth);
    if (kept.length > 0) {
      this.pending.set(event.queryRunner, kept);
    } else {
      this.pending.delete(event.queryRunner);
    }
  }
}

/**
 * TypeORM keeps the nesting depth in a protected field; savepoint handling needs it. Read
 * defensively so that a rename in TypeORM degrades to "dispatch on outermost commit".
 */
function transactionDepth(queryRunner: QueryRunner): number {
  const depth = (queryRunner as unknown as { transactionDepth?: unknown }).transactionDepth;

  return typeof depth === 'number' ? depth : 1;
}

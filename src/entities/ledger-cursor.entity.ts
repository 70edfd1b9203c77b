import { Column, Entity, PrimaryColumn } from 'typeorm';

import { bigintAsNumber } from './bigint-number.transformer';

/**
 * How far the ledger has read each queue's event stream, keyed by the stream's Redis key so that
 * two prefixes sharing a database keep separate cursors. Written with every applied batch.
 */
@Entity({ name: 'ledger_cursor' })
export class LedgerCursorEntity {
  @PrimaryColumn({ name: 'stream_key', type: 'varchar', length: 255 })
  streamKey!: string;

  @Column({ name: 'last_event_id', type: 'varchar', length: 40 })
  lastEventId!: string;

  /** How many stream entries have been read since the stream began; detects trimmed gaps. */
  @Column({ name: 'entries_read', type: 'bigint', unsigned: true, transformer: bigintAsNumber })
  entriesRead!: number;

  /** Matches a marker key in Redis; a missing or different marker means Redis lost its data. */
  @Column({ type: 'varchar', length: 40 })
  epoch!: string;

  @Column({
    name: 'updated_at',
    type: 'datetime',
    precision: 3,
    default: () => 'CURRENT_TIMESTAMP(3)',
    onUpdate: 'CURRENT_TIMESTAMP(3)',
  })
  updatedAt!: Date;
}

import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateJobLedger1764720000000 implements MigrationInterface {
  name = 'CreateJobLedger1764720000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE job_queue (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
        job_type VARCHAR(100) NOT NULL,
        payload MEDIUMTEXT NOT NULL,
        status VARCHAR(50) NOT NULL DEFAULT 'pending',
        attempt_count INT NOT NULL DEFAULT 0,
        error_message TEXT NULL,
        created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
        updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
        priority INT NOT NULL DEFAULT 0,
        max_attempts INT NOT NULL DEFAULT 1,
        backoff_strategy VARCHAR(20) NULL,
        backoff_delay_ms INT UNSIGNED NULL,
        backoff_jitter DOUBLE NULL,
        run_at DATETIME(3) NULL,
        dispatched_at DATETIME(3) NULL,
        started_at DATETIME(3) NULL,
        finished_at DATETIME(3) NULL,
        worker VARCHAR(255) NULL,
        last_event_id VARCHAR(40) NULL,
        PRIMARY KEY (id),
        KEY idx_job_queue_status_priority (status, priority, id),
        KEY idx_job_queue_type_status (job_type, status),
        KEY idx_job_queue_created_at (created_at),
        KEY idx_job_queue_updated_at (updated_at),
        KEY idx_job_queue_undispatched (status, dispatched_at, created_at),
        CONSTRAINT chk_job_queue_status
          CHECK (status IN ('pending', 'processing', 'completed', 'failed'))
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
    `);

    await queryRunner.query(`
      CREATE TABLE job_queue_history (
        id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
        job_id BIGINT UNSIGNED NOT NULL,
        from_status VARCHAR(50) NULL,
        to_status VARCHAR(50) NOT NULL,
        attempt INT NOT NULL,
        error_message TEXT NULL,
        worker VARCHAR(255) NULL,
        occurred_at DATETIME(3) NOT NULL,
        recorded_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
        source VARCHAR(20) NOT NULL,
        event_id VARCHAR(40) NULL,
        note VARCHAR(255) NULL,
        PRIMARY KEY (id),
        KEY idx_job_queue_history_job (job_id, id),
        KEY idx_job_queue_history_occurred_at (occurred_at)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
    `);

    await queryRunner.query(`
      CREATE TABLE ledger_cursor (
        stream_key VARCHAR(255) NOT NULL,
        last_event_id VARCHAR(40) NOT NULL,
        entries_read BIGINT UNSIGNED NOT NULL DEFAULT 0,
        epoch VARCHAR(40) NOT NULL,
        updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
        PRIMARY KEY (stream_key)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
    `);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('DROP TABLE ledger_cursor');
    await queryRunner.query('DROP TABLE job_queue_history');
    await queryRunner.query('DROP TABLE job_queue');
  }
}

import { MigrationInterface, QueryRunner } from 'typeorm';

export class AddIdempotencyKey1764806400000 implements MigrationInterface {
  name = 'AddIdempotencyKey1764806400000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // NULLs do not collide in a unique index: jobs without a key are never deduplicated.
    await queryRunner.query(`
      ALTER TABLE job_queue
        ADD COLUMN idempotency_key VARCHAR(255) NULL AFTER priority,
        ADD UNIQUE KEY uq_job_queue_idempotency_key (idempotency_key)
    `);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query('ALTER TABLE job_queue DROP INDEX uq_job_queue_idempotency_key');
    await queryRunner.query('ALTER TABLE job_queue DROP COLUMN idempotency_key');
  }
}

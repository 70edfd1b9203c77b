import { Module } from '@nestjs/common';
import { Test, TestingModule } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';

import { buildDataSourceOptions } from '../src/modules/database/data-source-options';
import { QueueModule } from '../src/modules/queue/queue.module';
import { QueueService } from '../src/modules/queue/queue.service';
import { createTestEnvironment, TestEnvironment, TEST_REDIS_URL } from './support/test-context';

const REDIS_SETTINGS = Symbol('REDIS_SETTINGS');

/** Stands for a service's own configuration module. */
@Module({
  providers: [{ provide: REDIS_SETTINGS, useValue: { url: TEST_REDIS_URL } }],
  exports: [REDIS_SETTINGS],
})
class SettingsModule {}

describe('QueueModule.forRootAsync in a service of its own', () => {
  let env: TestEnvironment;
  let moduleRef: TestingModule | undefined;

  beforeAll(async () => {
    env = await createTestEnvironment('forrootasync');
  });

  afterAll(async () => {
    await moduleRef?.close();
    await env?.cleanup();
  });

  it('injects QueueService with options from the service configuration and enqueues through it', async () => {
    moduleRef = await Test.createTestingModule({
      imports: [
        TypeOrmModule.forRoot(buildDataSourceOptions(env.config().database)),
        QueueModule.forRootAsync({
          jobTypes: [{ name: 'invoice_send', attempts: 4 }],
          imports: [SettingsModule],
          inject: [REDIS_SETTINGS],
          useFactory: (settings: { url: string }) => ({
            redisUrl: settings.url,
            prefix: env.prefix,
          }),
        }),
      ],
    }).compile();
    await moduleRef.init();
    const queue = moduleRef.get(QueueService);

    const job = await queue.enqueue('invoice_send', { invoice: 7 }, { priority: 3 });

    expect(job).toMatchObject({
      jobType: 'invoice_send',
      maxAttempts: 4,
      priority: 3,
      status: 'pending',
    });
    expect(await env.redis.exists(`${env.prefix}:invoice_send:job-${job.id}`)).toBe(1);
    await expect(queue.enqueue('email_dispatch', {})).rejects.toThrow('jobType: expected one of');
  });

  it('refuses a catalogue with a job type name BullMQ cannot use, saying which', () => {
    expect(() =>
      QueueModule.forRoot({ redisUrl: TEST_REDIS_URL, jobTypes: [{ name: 'Bad:Name' }] }),
    ).toThrow('Job type "Bad:Name": expected lower-case letters');
  });

  it('refuses a catalogue whose prioritized flag is not a boolean, saying which type', () => {
    const jobTypes = [{ name: 'event_forward', prioritized: 'no' as unknown as boolean }];

    expect(() => QueueModule.forRoot({ redisUrl: TEST_REDIS_URL, jobTypes })).toThrow(
      'Job type "event_forward": prioritized must be true or false, got no',
    );
  });

  it('refuses a producer backlog limit that the stream trimming would outrun', () => {
    const jobTypes = [{ name: 'event_forward' }];
    const options = { redisUrl: TEST_REDIS_URL, jobTypes, eventsMaxLen: 5000 };

    expect(() => QueueModule.forRoot({ ...options, producerLedgerBacklogLimit: 5000 })).toThrow(
      'producerLedgerBacklogLimit must be an integer from 0 to eventsMaxLen - 1 (4999), got 5000',
    );
    expect(() => QueueModule.forRoot({ ...options, producerLedgerBacklogLimit: 0 })).not.toThrow();
    expect(() => QueueModule.forRoot(options)).not.toThrow();
  });
});

import { Logger } from '@nestjs/common';
import { NestExpressApplication } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { DataSource } from 'typeorm';

import { AppModule } from '../src/app.module';
import { AppConfig } from '../src/modules/config/app-config';
import { jsonBodyLimitBytes } from '../src/modules/jobs-api/jobs-api.constants';
import { ledgerProgressKey } from '../src/modules/queue/queue.constants';
import { createTestEnvironment, TestEnvironment, waitFor } from './support/test-context';

/**
 * Builds the api role the way main.ts does. startApp() cannot be used here: the JSON body limit
 * must be set before init(), and startApp() initialises the app itself.
 */
async function startApiApp(
  env: TestEnvironment,
  overrides: Partial<AppConfig> = {},
): Promise<NestExpressApplication> {
  const config = env.config({ ...overrides, roles: ['api'] });
  const moduleRef = await Test.createTestingModule({
    imports: [AppModule.forRoles({ config })],
  }).compile();

  const app = moduleRef.createNestApplication<NestExpressApplication>({
    logger: ['error', 'warn'],
  });
  app.useBodyParser('json', { limit: jsonBodyLimitBytes(config.payloadLimitBytes) });
  app.enableShutdownHooks();
  await app.init();

  return app;
}

const email = { jobType: 'email_dispatch', payload: { to: 'ada@example.com' } };

describe('jobs API', () => {
  let env: TestEnvironment;
  let app: NestExpressApplication;

  beforeAll(async () => {
    env = await createTestEnvironment('jobsapi');
    app = await startApiApp(env);
  });

  afterAll(async () => {
    await app?.close();
    await env?.cleanup();
  });

  const http = () => request(app.getHttpServer());

  async function countRows(): Promise<number> {
    const [{ n }] = await app
      .get(DataSource)
      .query<Array<{ n: string | number }>>('SELECT COUNT(*) AS n FROM job_queue');

    return Number(n);
  }

  /** Sends a request that must be refused with 400 naming `field`, and writes nothing. */
  async function expectRefused(
    send: () => request.Test,
    field: string,
    fragment: string,
  ): Promise<request.Response> {
    const before = await countRows();
    const response = await send();

    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
    expect(response.body.message).toEqual(
      expect.arrayContaining([expect.stringContaining(fragment)]),
    );
    expect((response.body.message as string[]).join('\n')).toContain(field);
    expect(await countRows()).toBe(before);

    return response;
  }

  describe('POST /jobs', () => {
    it('answers 201 with the pending row, its defaults taken from the job type', async () => {
      const response = await http()
        .post('/jobs')
        .send({ ...email, priority: 7 })
        .expect(201);

      expect(response.body).toMatchObject({
        id: expect.any(Number),
        jobType: 'email_dispatch',
        payload: { to: 'ada@example.com' },
        status: 'pending',
        priority: 7,
        attemptCount: 0,
        maxAttempts: 3,
        errorMessage: null,
        startedAt: null,
        finishedAt: null,
        worker: null,
      });
      expect(new Date(response.body.createdAt).toISOString()).toBe(response.body.createdAt);
    });

    it('hands the job to BullMQ under the id job-<row id>', async () => {
      const { body } = await http().post('/jobs').send(email).expect(201);
      const key = `${env.prefix}:email_dispatch:job-${body.id}`;

      await waitFor(`${key} in Redis`, async () => (await env.redis.exists(key)) === 1);
    });

    it('accepts a payload of null and a schedule given as an ISO time', async () => {
      const runAt = new Date(Date.now() + 60 * 60 * 1000);
      const { body } = await http()
        .post('/jobs')
        .send({ jobType: 'data_backup', payload: null, runAt: runAt.toISOString() })
        .expect(201);

      expect(body).toMatchObject({ payload: null, maxAttempts: 2 });
      expect(Math.abs(new Date(body.runAt).getTime() - runAt.getTime())).toBeLessThan(5_000);
    });

    it('takes the job options it is given over the job type defaults', async () => {
      const { body } = await http()
        .post('/jobs')
        .send({ ...email, attempts: 5, backoff: { strategy: 'fixed', delayMs: 100, jitter: 0.5 } })
        .expect(201);

      expect(body.maxAttempts).toBe(5);
    });

    it('accepts a payload at the limit, which Express would refuse by default', async () => {
      const payload = 'x'.repeat(256 * 1024 - 2);

      await http().post('/jobs').send({ jobType: 'data_export', payload }).expect(201);
    });
  });

  describe('when a job breaks a rule', () => {
    it.each([
      [
        'an unknown job type, suggesting the close one',
        { jobType: 'email_dispach' },
        'jobType',
        'did you mean "email_dispatch"?',
      ],
      ['a job type that is not a string', { jobType: 42 }, 'jobType', 'jobType must be a string'],
      [
        'a negative priority',
        { priority: -1 },
        'priority',
        'expected an integer from 0 to 2097150, got -1',
      ],
      ['a fractional priority', { priority: 1.5 }, 'priority', 'priority must be an integer'],
      ['a priority past the top', { priority: 3_000_000 }, 'priority', 'got 3000000'],
      [
        'a priority given as a word',
        { priority: 'high' },
        'priority',
        'priority must be an integer',
      ],
      [
        'no attempt at all',
        { attempts: 0 },
        'attempts',
        'expected an integer from 1 to 100, got 0',
      ],
      ['too many attempts', { attempts: 101 }, 'attempts', 'got 101'],
      ['a negative delay', { delayMs: -5 }, 'delayMs', 'got -5'],
      [
        'an unknown backoff strategy',
        { backoff: { strategy: 'linear', delayMs: 100 } },
        'backoff.strategy',
        'expected one of fixed, exponential',
      ],
      [
        'a jitter above 1',
        { backoff: { strategy: 'fixed', delayMs: 100, jitter: 2 } },
        'backoff.jitter',
        'expected a number from 0 to 1',
      ],
      [
        'a backoff without its delay',
        { backoff: { strategy: 'fixed' } },
        'backoff.delayMs',
        'backoff.delayMs must be an integer',
      ],
      ['an unknown field', { colour: 'blue' }, 'colour', 'property colour should not exist'],
      [
        'an unknown backoff field',
        { backoff: { strategy: 'fixed', delayMs: 1, cap: 9 } },
        'backoff.cap',
        'property backoff.cap should not exist',
      ],
      [
        'a runAt that is no ISO time',
        { runAt: 'tomorrow' },
        'runAt',
        'runAt must be a valid ISO 8601 date string',
      ],
      [
        'a runAt without a time zone',
        { runAt: '2027-01-31T09:00:00' },
        'runAt',
        'runAt must be a date-time with Z or a UTC offset',
      ],
      [
        'both runAt and delayMs',
        { runAt: new Date().toISOString(), delayMs: 10 },
        'runAt',
        'either delayMs or runAt',
      ],
    ])('refuses %s', async (_situation, fields, field, fragment) => {
      await expectRefused(
        () =>
          http()
            .post('/jobs')
            .send({ ...email, ...fields }),
        field,
        fragment,
      );
    });

    it('says which field and rule QueueService refused', async () => {
      const { body } = await expectRefused(
        () =>
          http()
            .post('/jobs')
            .send({ ...email, priority: -1 }),
        'priority',
        'priority',
      );

      expect(body).toEqual({
        statusCode: 400,
        error: 'Bad Request',
        message: ['priority: expected an integer from 0 to 2097150, got -1'],
        field: 'priority',
        rule: 'expected an integer from 0 to 2097150',
      });
    });

    it('refuses a job without a payload', async () => {
      await expectRefused(
        () => http().post('/jobs').send({ jobType: 'email_dispatch' }),
        'payload',
        'payload is required',
      );
    });

    it('refuses a payload over 256 KiB after the parser has accepted the body', async () => {
      const payload = { blob: 'x'.repeat(256 * 1024) };

      const { body } = await expectRefused(
        () => http().post('/jobs').send({ jobType: 'email_dispatch', payload }),
        'payload',
        'expected at most 262144 bytes of JSON',
      );
      expect(body.field).toBe('payload');
    });

    it('refuses malformed JSON with 400, not 500', async () => {
      const before = await countRows();

      const { body } = await http()
        .post('/jobs')
        .set('Content-Type', 'application/json')
        .send('{"jobType": ')
        .expect(400);

      expect(body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
      expect(await countRows()).toBe(before);
    });

    it('refuses a body that is an array rather than an object', async () => {
      await expectRefused(
        () => http().post('/jobs').send([email]),
        'body',
        'body must be a JSON object',
      );
    });

    it('refuses a payload nested past the limit with 400, not a stack overflow', async () => {
      const depth = 20_000;
      const json = `{"jobType":"email_dispatch","payload":${'['.repeat(depth)}${']'.repeat(depth)}}`;

      await expectRefused(
        () => http().post('/jobs').set('Content-Type', 'application/json').send(json),
        'payload[0][0]',
        'must be JSON nested at most 256 levels deep',
      );
    });

    it('refuses a payload key that the validation would otherwise strip', async () => {
      const json = '{"jobType":"email_dispatch","payload":{"user":{"constructor":"Ada"}}}';

      await expectRefused(
        () => http().post('/jobs').set('Content-Type', 'application/json').send(json),
        'payload.user.constructor',
        'are reserved',
      );
    });

    it('refuses a body past the parser limit with 413', async () => {
      const before = await countRows();
      const payload = 'x'.repeat(jsonBodyLimitBytes(256 * 1024) + 1);

      await http().post('/jobs').send({ jobType: 'email_dispatch', payload }).expect(413);
      expect(await countRows()).toBe(before);
    });
  });

  describe('POST /jobs/batch', () => {
    it('answers 201 with every row in request order', async () => {
      const before = await countRows();
      const jobs = [
        { ...email, priority: 1 },
        { jobType: 'report_generate', payload: { month: '2026-11' } },
        { jobType: 'cleanup_task', payload: [] },
      ];

      const { body } = await http().post('/jobs/batch').send({ jobs }).expect(201);

      expect(body.jobs).toHaveLength(3);
      expect(body.jobs.map((job: { jobType: string }) => job.jobType)).toEqual([
        'email_dispatch',
        'report_generate',
        'cleanup_task',
      ]);
      expect(body.jobs.every((job: { status: string }) => job.status === 'pending')).toBe(true);
      expect(await countRows()).toBe(before + 3);
    });

    it('writes nothing when one job is refused by QueueService, naming it by index', async () => {
      const jobs = [email, { ...email, priority: -1 }, email];

      const { body } = await expectRefused(
        () => http().post('/jobs/batch').send({ jobs }),
        'jobs[1].priority',
        'jobs[1].priority: expected an integer',
      );
      expect(body.field).toBe('jobs[1].priority');
    });

    it('writes nothing when one job has the wrong type, naming it by index', async () => {
      const jobs = [email, { ...email, priority: 'high' }];

      await expectRefused(
        () => http().post('/jobs/batch').send({ jobs }),
        'jobs[1].priority',
        'jobs[1].priority must be an integer',
      );
    });

    it('refuses an unknown field inside one of the jobs', async () => {
      await expectRefused(
        () =>
          http()
            .post('/jobs/batch')
            .send({ jobs: [{ ...email, colour: 'blue' }] }),
        'jobs[0].colour',
        'property jobs[0].colour should not exist',
      );
    });

    it('refuses an empty batch', async () => {
      await expectRefused(
        () => http().post('/jobs/batch').send({ jobs: [] }),
        'jobs',
        'expected an array of 1 to 1000 jobs',
      );
    });

    it('refuses a batch past 1000 jobs', async () => {
      const jobs = Array.from({ length: 1001 }, () => ({ jobType: 'cleanup_task', payload: 1 }));

      await expectRefused(
        () => http().post('/jobs/batch').send({ jobs }),
        'jobs',
        'expected an array of 1 to 1000 jobs',
      );
    });
  });

  describe('GET /jobs/:id', () => {
    it('answers with the row as it was enqueued', async () => {
      const { body: created } = await http().post('/jobs').send(email).expect(201);

      const { body } = await http().get(`/jobs/${created.id}`).expect(200);

      expect(body).toMatchObject({
        id: created.id,
        jobType: 'email_dispatch',
        payload: email.payload,
        status: 'pending',
        attemptCount: 0,
        maxAttempts: 3,
        createdAt: created.createdAt,
      });
    });

    it('answers 404 for a job that does not exist', async () => {
      const { body } = await http().get('/jobs/987654321').expect(404);

      expect(body).toMatchObject({ statusCode: 404, message: 'job 987654321 not found' });
    });

    it.each(['abc', '0', '-3', '07', '1.5', '1e3', '0x10', '9007199254740993'])(
      'refuses the id %s with 400 naming id',
      async (id) => {
        const { body } = await http().get(`/jobs/${id}`).expect(400);

        expect(body).toMatchObject({ statusCode: 400, field: 'id' });
        expect(body.message[0]).toContain('id: expected a positive integer');
      },
    );
  });

  describe('GET /jobs/:id/history', () => {
    it('shows the enqueue as the first transition, from null to pending', async () => {
      const { body: created } = await http().post('/jobs').send(email).expect(201);

      const { body } = await http().get(`/jobs/${created.id}/history`).expect(200);

      expect(body).toEqual({
        jobId: created.id,
        transitions: [
          {
            id: expect.any(Number),
            fromStatus: null,
            toStatus: 'pending',
            attempt: 0,
            errorMessage: null,
            worker: null,
            occurredAt: created.createdAt,
            source: 'enqueue',
            note: null,
          },
        ],
      });
    });

    it('answers 404 for a job that does not exist', async () => {
      await http().get('/jobs/987654321/history').expect(404);
    });

    it('refuses a non-numeric id with 400', async () => {
      const { body } = await http().get('/jobs/latest/history').expect(400);

      expect(body.field).toBe('id');
    });
  });

  describe('when the ledger database is unreachable', () => {
    let cutOff: NestExpressApplication;
    let loggedErrors: jest.SpyInstance;

    beforeAll(async () => {
      cutOff = await startApiApp(env);
      await cutOff.get(DataSource).destroy();
      loggedErrors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    });

    afterAll(async () => {
      loggedErrors?.mockRestore();
      await cutOff?.close();
    });

    it('answers 503 to an enqueue and writes nothing', async () => {
      const before = await countRows();

      const { body } = await request(cutOff.getHttpServer()).post('/jobs').send(email).expect(503);

      expect(body).toEqual({
        statusCode: 503,
        error: 'Service Unavailable',
        message: 'the job ledger is unavailable; the job was not accepted',
      });
      expect(await countRows()).toBe(before);
      expect(loggedErrors).toHaveBeenCalled();
    });

    it('answers 503 to a read', async () => {
      const { body } = await request(cutOff.getHttpServer()).get('/jobs/1').expect(503);

      expect(body).toMatchObject({
        statusCode: 503,
        message: expect.stringContaining('unavailable'),
      });
    });
  });

  describe('when the ledger is too far behind on the queue', () => {
    let lagging: NestExpressApplication;
    const progressKey = () => ledgerProgressKey(env.prefix, email.jobType);

    beforeAll(async () => {
      lagging = await startApiApp(env, { eventsMaxLen: 1000, producerLedgerBacklogLimit: 10 });
    });

    afterAll(async () => {
      await env.redis.del(progressKey());
      await lagging?.close();
    });

    it('answers 503 with Retry-After, names the queue, and writes nothing', async () => {
      // A ledger that has read nothing of a stream holding every job enqueued so far.
      await env.redis.set(progressKey(), 0);
      const refused = await waitFor('an enqueue to be refused', async () => {
        const response = await request(lagging.getHttpServer()).post('/jobs').send(email);

        return response.status === 503 ? response : undefined;
      });
      const before = await countRows();

      const response = await request(lagging.getHttpServer()).post('/jobs').send(email);

      expect(response.status).toBe(503);
      expect(response.headers['retry-after']).toBe('1');
      expect(response.body).toMatchObject({ statusCode: 503, error: 'Service Unavailable' });
      expect(response.body.message).toMatch(
        /ledger is \d+ events behind on queue "email_dispatch"/,
      );
      expect(refused.headers['retry-after']).toBe('1');
      expect(await countRows()).toBe(before);
    });
  });

  describe('GET /health', () => {
    it('answers 200 while the process serves HTTP', async () => {
      await http().get('/health').expect(200, { status: 'ok' });
    });
  });
});

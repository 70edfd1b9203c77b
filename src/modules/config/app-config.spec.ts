import { hostname } from 'node:os';

import { AppConfig, ConfigValidationError, loadAppConfig } from './app-config';

function configErrorOf(env: Record<string, string | undefined>): ConfigValidationError {
  try {
    loadAppConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigValidationError);

    return error as ConfigValidationError;
  }

  throw new Error('expected a ConfigValidationError, but the environment was accepted');
}

describe('loadAppConfig', () => {
  describe('when the environment sets nothing', () => {
    it('runs every role in one process against local Redis and MySQL', () => {
      expect(loadAppConfig({})).toMatchObject<Partial<AppConfig>>({
        redisUrl: 'redis://127.0.0.1:6379',
        database: {
          host: '127.0.0.1',
          port: 3306,
          user: 'root',
          password: '',
          database: 'ledger_queue',
        },
        port: 3000,
        roles: ['api', 'worker', 'ledger'],
        queuePrefix: 'lq',
        workerJobTypes: undefined,
        workerConcurrency: 10,
        logLevel: 'log',
        diagnosticJobs: false,
        runMigrations: true,
      });
    });

    it('quarantines suspect jobs in a child process and leaves the stall limit to the worker', () => {
      expect(loadAppConfig({})).toMatchObject<Partial<AppConfig>>({
        workerQuarantine: 'child',
        workerQuarantineTimeoutMs: 300_000,
        workerQuarantineProcesses: 2,
        workerMaxStalledCount: undefined,
        workerQuarantineChild: false,
      });
    });

    it('names the worker after the host and process', () => {
      expect(loadAppConfig({}).workerName).toBe(`${hostname()}:${process.pid}`);
    });

    it('treats empty values as unset', () => {
      const config = loadAppConfig({
        REDIS_URL: '',
        DATABASE_URL: '',
        PORT: '',
        LOG_LEVEL: '',
        ROLES: '',
      });

      expect(config).toMatchObject({
        redisUrl: 'redis://127.0.0.1:6379',
        database: { host: '127.0.0.1', database: 'ledger_queue' },
        port: 3000,
        logLevel: 'log',
        roles: ['api', 'worker', 'ledger'],
      });
    });
  });

  describe('when DATABASE_URL is set', () => {
    it('reads host, port, user, password and database from it', () => {
      expect(
        loadAppConfig({ DATABASE_URL: 'mysql://ledger:s3cret@db.internal:3307/jobs' }).database,
      ).toEqual({
        host: 'db.internal',
        port: 3307,
        user: 'ledger',
        password: 's3cret',
        database: 'jobs',
      });
    });

    it('decodes URL-encoded characters in the user and password', () => {
      const { database } = loadAppConfig({
        DATABASE_URL: 'mysql://ledger%2Bops:p%40ss%2Fw%3Ard%23%25@db:3306/jobs',
      });

      expect(database.user).toBe('ledger+ops');
      expect(database.password).toBe('p@ss/w:rd#%');
    });

    it('falls back to port 3306 and user root when the URL leaves them out', () => {
      expect(loadAppConfig({ DATABASE_URL: 'mariadb://db.internal/jobs' }).database).toEqual({
        host: 'db.internal',
        port: 3306,
        user: 'root',
        password: '',
        database: 'jobs',
      });
    });
  });

  describe('when the roles, job types and Redis URL are set', () => {
    it('keeps the listed roles once each, trimmed', () => {
      expect(loadAppConfig({ ROLES: ' worker , ledger,worker' }).roles).toEqual([
        'worker',
        'ledger',
      ]);
    });

    it('reads "all" as every role and every job type', () => {
      const config = loadAppConfig({ ROLES: 'all', WORKER_JOB_TYPES: 'all' });

      expect(config.roles).toEqual(['api', 'worker', 'ledger']);
      expect(config.workerJobTypes).toBeUndefined();
    });

    it('lists the job types a worker runs', () => {
      expect(
        loadAppConfig({ WORKER_JOB_TYPES: 'email_dispatch, data_backup,' }).workerJobTypes,
      ).toEqual(['email_dispatch', 'data_backup']);
    });

    it('accepts a TLS Redis URL', () => {
      expect(loadAppConfig({ REDIS_URL: 'rediss://:pw@cache:6380/2' }).redisUrl).toBe(
        'rediss://:pw@cache:6380/2',
      );
    });
  });

  describe('when several variables are bad', () => {
    const env = {
      PORT: 'abc',
      ROLES: 'api,bogus',
      REDIS_URL: 'http://x',
      DATABASE_URL: 'postgres://ledger:pw@db:5432/jobs',
      WORKER_CONCURRENCY: '0',
      LOG_LEVEL: 'loud',
    };

    it('names every one of them in a single error', () => {
      const error = configErrorOf(env);

      expect(error.problems).toHaveLength(6);
      for (const key of Object.keys(env)) {
        expect(error.message).toContain(key);
      }
    });

    it('says what each one expected', () => {
      expect(configErrorOf(env).problems).toEqual([
        expect.stringMatching(/^REDIS_URL: expected a URL starting with redis.*rediss/),
        'DATABASE_URL: expected mysql://user:password@host:port/database',
        'PORT=abc: expected an integer from 0 to 65535',
        'ROLES=api,bogus: expected a comma-separated list of api, worker, ledger or "all"',
        'WORKER_CONCURRENCY=0: expected an integer from 1 to 10000',
        'LOG_LEVEL=loud: expected one of error, warn, log, debug, verbose',
      ]);
    });
  });

  describe('when one variable is bad', () => {
    it.each([
      ['PORT', '65536'],
      ['PORT', '-1'],
      ['PORT', '80.5'],
      ['PORT', '1e3'],
      ['WORKER_CONCURRENCY', '10001'],
      ['ROLES', ','],
      ['QUEUE_PREFIX', 'has space'],
      ['DIAGNOSTIC_JOBS', 'yes'],
      ['RUN_MIGRATIONS', '1'],
      ['WORKER_QUARANTINE', 'on'],
      ['WORKER_MAX_STALLED_COUNT', '2.5'],
      ['WORKER_QUARANTINE_TIMEOUT_MS', 'soon'],
      ['WORKER_QUARANTINE_PROCESSES', '0'],
      ['REDIS_URL', 'not a url'],
      ['DATABASE_URL', 'mysql://db.internal:3306/'],
      ['DATABASE_URL', 'mysql://db.internal/ledger-queue'],
    ])('rejects %s=%s', (key, value) => {
      const error = configErrorOf({ [key]: value });

      expect(error.problems).toHaveLength(1);
      expect(error.problems[0].startsWith(key)).toBe(true);
    });
  });

  describe('when DATABASE_URL holds a password and is rejected', () => {
    const password = 'Sup3r$ecretPw';
    const encoded = encodeURIComponent(password);

    it.each([
      ['a URL of another database', `postgres://ledger:${encoded}@db:5432/jobs`],
      ['a URL that does not parse', `mysql://ledger:${encoded}@db:notaport/jobs`],
      ['a URL without a database name', `mysql://ledger:${encoded}@db:3306/`],
      ['a URL with a bad database name', `mysql://ledger:${encoded}@db:3306/bad-name`],
    ])('never repeats the password for %s', (_case, url) => {
      const error = configErrorOf({ DATABASE_URL: url, PORT: 'abc' });

      expect(error.message).toContain('DATABASE_URL');
      expect(error.message).not.toContain(password);
      expect(error.message).not.toContain(encoded);
    });
  });
  describe('when quarantine and the stall limit are set', () => {
    it('reads the mode, the timeout and the stall limit', () => {
      expect(
        loadAppConfig({
          WORKER_QUARANTINE: 'off',
          WORKER_QUARANTINE_TIMEOUT_MS: '5000',
          WORKER_QUARANTINE_PROCESSES: '4',
          WORKER_MAX_STALLED_COUNT: '0',
        }),
      ).toMatchObject<Partial<AppConfig>>({
        workerQuarantine: 'off',
        workerQuarantineTimeoutMs: 5000,
        workerQuarantineProcesses: 4,
        workerMaxStalledCount: 0,
      });
    });

    it('recognises the quarantine child a worker starts', () => {
      expect(loadAppConfig({ WORKER_QUARANTINE_CHILD: 'true' }).workerQuarantineChild).toBe(true);
    });

    it('says what each one expected', () => {
      expect(
        configErrorOf({
          WORKER_QUARANTINE: 'fork',
          WORKER_QUARANTINE_TIMEOUT_MS: '999',
          WORKER_MAX_STALLED_COUNT: '-1',
          WORKER_QUARANTINE_CHILD: 'yes',
        }).problems,
      ).toEqual([
        'WORKER_QUARANTINE=fork: expected one of child, off',
        'WORKER_QUARANTINE_TIMEOUT_MS=999: expected an integer from 1000 to 86400000',
        'WORKER_MAX_STALLED_COUNT=-1: expected an integer from 0 to 1000',
        'WORKER_QUARANTINE_CHILD=yes: expected one of true, false',
      ]);
    });
  });

  describe('when concurrency is set per job type', () => {
    it('reads type:n pairs', () => {
      expect(
        loadAppConfig({ WORKER_CONCURRENCY_BY_TYPE: 'email_dispatch:5, data_backup:1' })
          .workerConcurrencyByType,
      ).toEqual({ email_dispatch: 5, data_backup: 1 });
    });

    it('names the variable and the bad pair', () => {
      expect(configErrorOf({ WORKER_CONCURRENCY_BY_TYPE: 'email_dispatch:0' }).message).toContain(
        'WORKER_CONCURRENCY_BY_TYPE: expected a comma-separated list of job_type:concurrency',
      );
      expect(configErrorOf({ WORKER_CONCURRENCY_BY_TYPE: 'email_dispatch' }).message).toContain(
        'got "email_dispatch"',
      );
    });
  });

  describe('when the ledger backlog limit is set or left out', () => {
    it('defaults to half of the event stream length', () => {
      expect(loadAppConfig({}).workerLedgerBacklogLimit).toBe(50_000);
      expect(loadAppConfig({ EVENTS_MAX_LEN: '9000' }).workerLedgerBacklogLimit).toBe(4500);
    });

    it('accepts 0 (never hold workers back) and any value below the stream length', () => {
      expect(loadAppConfig({ WORKER_LEDGER_BACKLOG_LIMIT: '0' }).workerLedgerBacklogLimit).toBe(0);
      expect(
        loadAppConfig({ EVENTS_MAX_LEN: '2000', WORKER_LEDGER_BACKLOG_LIMIT: '1999' })
          .workerLedgerBacklogLimit,
      ).toBe(1999);
    });

    it('refuses a limit the stream trimming would outrun, naming both variables', () => {
      const message = configErrorOf({
        EVENTS_MAX_LEN: '2000',
        WORKER_LEDGER_BACKLOG_LIMIT: '2000',
      }).message;
      expect(message).toContain('WORKER_LEDGER_BACKLOG_LIMIT=2000');
      expect(message).toContain('expected less than EVENTS_MAX_LEN (2000)');
      expect(configErrorOf({ WORKER_LEDGER_BACKLOG_LIMIT: '-1' }).message).toContain(
        'WORKER_LEDGER_BACKLOG_LIMIT=-1: expected an integer from 0',
      );
    });
  });

  describe("when the producers' ledger backlog limit is set or left out", () => {
    it("defaults to 80% of the event stream length, above the workers' half", () => {
      expect(loadAppConfig({}).producerLedgerBacklogLimit).toBe(80_000);
      expect(loadAppConfig({ EVENTS_MAX_LEN: '9000' }).producerLedgerBacklogLimit).toBe(7200);
    });

    it('accepts 0 (never refuse) and any value below the stream length', () => {
      expect(loadAppConfig({ PRODUCER_LEDGER_BACKLOG_LIMIT: '0' }).producerLedgerBacklogLimit).toBe(
        0,
      );
      expect(
        loadAppConfig({ EVENTS_MAX_LEN: '2000', PRODUCER_LEDGER_BACKLOG_LIMIT: '1999' })
          .producerLedgerBacklogLimit,
      ).toBe(1999);
    });

    it('refuses a limit the stream trimming would outrun, naming both variables', () => {
      const message = configErrorOf({
        EVENTS_MAX_LEN: '2000',
        PRODUCER_LEDGER_BACKLOG_LIMIT: '2500',
      }).message;
      expect(message).toContain('PRODUCER_LEDGER_BACKLOG_LIMIT=2500');
      expect(message).toContain('expected less than EVENTS_MAX_LEN (2000)');
      expect(configErrorOf({ PRODUCER_LEDGER_BACKLOG_LIMIT: 'lots' }).message).toContain(
        'PRODUCER_LEDGER_BACKLOG_LIMIT',
      );
    });
  });
});

import { randomBytes } from 'node:crypto';

import { INestApplication, Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import Redis from 'ioredis';
import { createConnection } from 'mysql2/promise';
import { DataSource } from 'typeorm';

import { AppModule, AppModuleOptions } from '../../src/app.module';
import { JobEntity } from '../../src/entities';
import { AppConfig, loadAppConfig, Role } from '../../src/modules/config/app-config';
import { prepareDatabase } from '../../src/modules/database/prepare-database';
import { QueueService } from '../../src/modules/queue/queue.service';

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const TEST_MYSQL_URL = process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306';

/** A database and a Redis prefix of this test file's own, created and removed with it. */
export interface TestEnvironment {
  databaseName: string;
  prefix: string;
  config(overrides?: Partial<AppConfig> & { roles?: Role[] }): AppConfig;
  /** The environment variables a spawned process needs to join this environment. */
  env(extra?: Record<string, string>): Record<string, string>;
  redis: Redis;
  cleanup(): Promise<void>;
}

export async function createTestEnvironment(label: string): Promise<TestEnvironment> {
  const suffix = `${label
    .replace(/[^a-z0-9]/gi, '')
    .toLowerCase()
    .slice(0, 20)}_${randomBytes(4).toString('hex')}`;
  const databaseName = `lq_test_${suffix}`;
  const prefix = `lqtest-${suffix}`;
  const baseEnv = {
    REDIS_URL: TEST_REDIS_URL,
    DATABASE_URL: `${TEST_MYSQL_URL}/${databaseName}`,
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: 'warn',
  };

  // Settings whose defaults follow the stream length (the backlog limits) follow an override.
  const config = (overrides: Partial<AppConfig> = {}): AppConfig => ({
    ...loadAppConfig({
      ...baseEnv,
      ...(overrides.eventsMaxLen ? { EVENTS_MAX_LEN: String(overrides.eventsMaxLen) } : {}),
    }),
    ...overrides,
  });
  await prepareDatabase(config());

  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 3 });

  return {
    databaseName,
    prefix,
    config,
    env: (extra = {}) => ({ ...baseEnv, ...extra }),
    redis,
    cleanup: async () => {
      await deleteKeys(redis, `${prefix}:*`);
      redis.disconnect();
      await dropDatabase(databaseName);
    },
  };
}

/** Starts a Nest application with the given roles inside a test environment. */
export async function startApp(
  environment: TestEnvironment,
  options: Omit<AppModuleOptions, 'config'> & { roles?: Role[]; config?: Partial<AppConfig> } = {},
): Promise<INestApplication> {
  const { roles, config: overrides, ...rest } = options;
  const config = environment.config({ ...overrides, ...(roles ? { roles } : {}) });
  const moduleRef = await Test.createTestingModule({
    imports: [AppModule.forRoles({ ...rest, config })],
  }).compile();

  const app = moduleRef.createNestApplication({ logger: ['error', 'warn'] });
  app.enableShutdownHooks();
  await app.init();

  return app;
}

export type StartOptions = Parameters<typeof startApp>[1];

/** One environment for a describe block, and the applications started in it, closed after it. */
export interface SharedEnvironment {
  readonly env: TestEnvironment;
  start(options: StartOptions): Promise<INestApplication>;
  /** Closes an application before the block ends, so that it is not closed twice. */
  stop(app: INestApplication): Promise<void>;
}

/** Registers the block's hooks: the environment is made before its tests and removed after. */
export function useTestEnvironment(name: string): SharedEnvironment {
  let env: TestEnvironment;
  const apps: INestApplication[] = [];

  beforeAll(async () => {
    env = await createTestEnvironment(name);
  });

  afterAll(async () => {
    for (const app of apps.splice(0).reverse()) {
      await app.close();
    }
    await env?.cleanup();
  });

  return {
    get env() {
      return env;
    },
    async start(options) {
      const app = await startApp(env, options);
      apps.push(app);

      return app;
    },
    async stop(app) {
      apps.splice(apps.indexOf(app), 1);
      await app.close();
    },
  };
}

/** One environment and one application for a describe block, both removed after it. */
export function useTestApp(
  name: string,
  options: StartOptions,
): { readonly env: TestEnvironment; readonly app: INestApplication } {
  const shared = useTestEnvironment(name);
  let app: INestApplication;

  beforeAll(async () => {
    app = await shared.start(options);
  });

  return {
    get env() {
      return shared.env;
    },
    get app() {
      return app;
    },
  };
}

export function getService<T>(app: INestApplication, type: Type<T>): T {
  return app.get(type, { strict: false });
}

/** Polls `probe` until it returns a truthy value, failing with `what` after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false>,
  timeoutMs = 15_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;

  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value) {
        return value;
      }
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }

  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? ` (last error: ${last.message})` : ''}`,
  );
}

/** A queue's event stream counters, as `XINFO STREAM` gives them. */
export async function streamCounters(
  env: TestEnvironment,
  jobType: string,
): Promise<{ entriesAdded: number; length: number }> {
  const info = (await env.redis.xinfo('STREAM', `${env.prefix}:${jobType}:events`)) as unknown[];
  const counter = (name: string) => Number(info[info.indexOf(name) + 1]);

  return { entriesAdded: counter('entries-added'), length: counter('length') };
}

/** Polls until the job's ledger row is completed or failed, and returns it. */
export function waitForFinished(queue: QueueService, id: number): Promise<JobEntity> {
  return waitFor(`job ${id} to finish in the ledger`, async () => {
    const row = await queue.get(id);

    return row && (row.status === 'completed' || row.status === 'failed') ? row : undefined;
  });
}

/**
 * Waits until the ledger's cursor for `jobType` has passed every event its stream held when
 * called: the projector has read them all (it writes nothing for events that only say a job
 * reached Redis, so the rows alone cannot show it).
 */
export async function waitForLedgerToReadEvents(
  app: INestApplication,
  env: TestEnvironment,
  jobType: string,
): Promise<void> {
  const streamKey = `${env.prefix}:${jobType}:events`;
  const { entriesAdded } = await streamCounters(env, jobType);
  const dataSource = app.get(DataSource, { strict: false });

  await waitFor(`the ledger to read the ${entriesAdded} events of ${jobType}`, async () => {
    const [cursor] = await dataSource.query<Array<{ entries_read: string | number }>>(
      'SELECT entries_read FROM ledger_cursor WHERE stream_key = ?',
      [streamKey],
    );

    return cursor !== undefined && Number(cursor.entries_read) >= entriesAdded;
  });
}

async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) {
      await redis.del(...keys);
    }
  } while (cursor !== '0');
}

async function dropDatabase(name: string): Promise<void> {
  const url = new URL(TEST_MYSQL_URL);
  const connection = await createConnection({
    host: url.hostname,
    port: Number(url.port || 3306),
    user: decodeURIComponent(url.username) || 'root',
    password: decodeURIComponent(url.password),
  });
  try {
    await connection.query(`DROP DATABASE IF EXISTS \`${name}\``);
  } finally {
    await connection.end();
  }
}

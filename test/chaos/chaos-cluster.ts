import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import Redis from 'ioredis';
import { createConnection } from 'mysql2/promise';

import { loadAppConfig } from '../../src/modules/config/app-config';
import { prepareDatabase } from '../../src/modules/database/prepare-database';
import { SpawnedRole, spawnRole, stopRole } from '../support/spawned-process';
import { freePort, PrivateMariaDb, PrivateRedis } from '../support/private-servers';
import { RedisProxy } from './redis-proxy';

export const PREFIX = 'chaos';
const DATABASE = 'chaos_ledger';

type RoleName = 'api' | 'ledger' | 'worker-1' | 'worker-2';

export interface EnqueueAnswer {
  ids: number[];
  status: number;
  ms: number;
  retryAfterSeconds: number;
}

export interface ClusterOptions {
  /** Keep Redis data across a stop (append-only file), as a Redis that is only unreachable. */
  redisPersistence?: boolean;
  /** Restart a worker process whenever it dies, as an orchestrator would. */
  superviseWorkers?: boolean;
  apiEnv?: Record<string, string>;
  /** Settings for every role. */
  env?: Record<string, string>;
}

/**
 * A whole deployment on private servers: Redis, MariaDB, the API (reaching Redis through a relay
 * that can partition it), the ledger and two worker processes, all real processes.
 */
export class ChaosCluster {
  readonly roles = new Map<RoleName, SpawnedRole>();
  private supervising = true;
  apiPort = 0;

  private constructor(
    readonly redis: PrivateRedis,
    readonly db: PrivateMariaDb,
    readonly proxy: RedisProxy,
    readonly directory: string,
    private readonly options: ClusterOptions,
  ) {}

  static async start(options: ClusterOptions = {}): Promise<ChaosCluster> {
    const redis = await PrivateRedis.start({ appendOnly: options.redisPersistence ?? false });
    const db = await PrivateMariaDb.start();
    const proxy = await RedisProxy.start(redis.port);
    const directory = mkdtempSync(join(tmpdir(), 'ledger-chaos-'));
    writeFileSync(join(directory, 'executions.log'), '');
    const cluster = new ChaosCluster(redis, db, proxy, directory, options);

    await prepareDatabase(loadAppConfig(cluster.env()));
    cluster.apiPort = await freePort();
    await cluster.startRole('ledger');
    await cluster.startRole('worker-1');
    await cluster.startRole('worker-2');
    await cluster.startRole('api');

    return cluster;
  }

  get executionLog(): string {
    return join(this.directory, 'executions.log');
  }

  env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      REDIS_URL: this.redis.url,
      DATABASE_URL: `${this.db.url}/${DATABASE}`,
      QUEUE_PREFIX: PREFIX,
      DIAGNOSTIC_JOBS: 'true',
      DIAGNOSTIC_EXECUTION_LOG: this.executionLog,
      WORKER_LOCK_DURATION_MS: '2000',
      WORKER_STALLED_INTERVAL_MS: '1000',
      WORKER_CONCURRENCY: '25',
      DISPATCH_GRACE_MS: '1000',
      RECONCILE_INTERVAL_MS: '1000',
      RUN_MIGRATIONS: 'false',
      LOG_LEVEL: process.env.CHAOS_LOG_LEVEL ?? 'error',
      ...this.options.env,
      ...extra,
    };
  }

  async startRole(name: RoleName): Promise<void> {
    const env =
      name === 'api'
        ? this.env({
            ROLES: 'api',
            PORT: String(this.apiPort),
            REDIS_URL: this.proxy.url,
            ...this.options.apiEnv,
          })
        : this.env({
            ROLES: name === 'ledger' ? 'ledger' : 'worker',
            WORKER_NAME: name,
          });
    const role = spawnRole(env);
    this.roles.set(name, role);
    if (name.startsWith('worker') && this.options.superviseWorkers) {
      void role.exited.then(async () => {
        if (this.supervising && this.roles.get(name) === role) {
          await this.startRole(name);
        }
      });
    }

    if (name === 'api') {
      await this.waitForApi(role);
    }
  }

  async kill(name: RoleName, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const role = this.roles.get(name);
    role?.child.kill(signal);
    await role?.exited;
  }

  /** Sends a signal without waiting for an exit: SIGSTOP and SIGCONT freeze and thaw a role. */
  signal(name: RoleName, signal: NodeJS.Signals): void {
    this.roles.get(name)?.child.kill(signal);
  }

  /**
   * POST /jobs/batch; returns the ids it acknowledged, or the HTTP status it refused with and
   * the seconds its `Retry-After` asked for.
   */
  async enqueueBatch(jobs: unknown[]): Promise<EnqueueAnswer> {
    const started = performance.now();
    try {
      const response = await fetch(`http://127.0.0.1:${this.apiPort}/jobs/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jobs }),
        signal: AbortSignal.timeout(30_000),
      });
      const body = (await response.json()) as { jobs?: Array<{ id: number }> };

      return {
        ids: response.status === 201 ? (body.jobs ?? []).map((job) => job.id) : [],
        status: response.status,
        ms: performance.now() - started,
        retryAfterSeconds: Number(response.headers.get('retry-after') ?? 0),
      };
    } catch {
      return { ids: [], status: 0, ms: performance.now() - started, retryAfterSeconds: 0 };
    }
  }

  async query<T>(sql: string, parameters: unknown[] = []): Promise<T[]> {
    const connection = await createConnection({
      uri: `${this.db.url}/${DATABASE}`,
      supportBigNumbers: true,
      bigNumberStrings: false,
      dateStrings: true,
    });
    try {
      const [rows] = await connection.query(sql, parameters);

      return rows as T[];
    } finally {
      await connection.end();
    }
  }

  redisClient(): Redis {
    const client = new Redis(this.redis.url, { maxRetriesPerRequest: 1 });
    client.on('error', () => undefined);

    return client;
  }

  executions(): Array<{ kind: 'start' | 'done'; id: number }> {
    return readFileSync(this.executionLog, 'utf8')
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => {
        const [kind, id] = line.split(' ');

        return { kind: kind as 'start' | 'done', id: Number(id) };
      });
  }

  async destroy(): Promise<void> {
    this.supervising = false;
    await Promise.all([...this.roles.values()].map((role) => stopRole(role)));
    await this.proxy.close();
    await this.redis.destroy();
    await this.db.destroy();
    rmSync(this.directory, { recursive: true, force: true });
  }

  private async waitForApi(role: SpawnedRole): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (role.child.exitCode !== null) {
        throw new Error(`the API exited while starting:\n${role.output()}`);
      }
      try {
        const response = await fetch(`http://127.0.0.1:${this.apiPort}/health`);
        if (response.ok) {
          return;
        }
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    throw new Error(`the API did not answer within 30 s:\n${role.output()}`);
  }
}

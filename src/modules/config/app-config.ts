import { hostname } from 'node:os';

import { DEFAULT_EVENTS_MAX_LEN, PRODUCER_BACKLOG_SHARE } from '../queue/queue.constants';

/** The roles a process can run; `all` of them run in one process by default. */
export const ROLES = ['api', 'worker', 'ledger'] as const;
export type Role = (typeof ROLES)[number];

export interface DatabaseConfig {
  host: string;
  port: number;
  user: string;
  /** Secret: never logged. */
  password: string;
  database: string;
}

export interface AppConfig {
  redisUrl: string;
  database: DatabaseConfig;
  port: number;
  roles: Role[];
  /** Redis key prefix for every queue; give each deployment (and each test run) its own. */
  queuePrefix: string;
  /** Job types the worker role runs; `undefined` means every declared type. */
  workerJobTypes: string[] | undefined;
  workerConcurrency: number;
  /** Per job type concurrency, overriding the catalogue's and `workerConcurrency`. */
  workerConcurrencyByType: Record<string, number>;
  workerName: string;
  shutdownTimeoutMs: number;
  payloadLimitBytes: number;
  eventsMaxLen: number;
  dispatchGraceMs: number;
  dispatchTimeoutMs: number;
  /** `accept`: commit and send later; `refuse`: answer 503 and write nothing. */
  enqueueWhenRedisDown: 'accept' | 'refuse';
  /** How often the ledger compares unfinished rows with the jobs in Redis. */
  reconcileIntervalMs: number;
  /** How often the ledger looks for committed rows that never reached Redis. */
  dispatchIntervalMs: number;
  /** How long the projector lets events gather after a batch that was not full. */
  ledgerBatchWaitMs: number;
  ledgerCursorSaveDeferMs: number;
  logLevel: 'error' | 'warn' | 'log' | 'debug' | 'verbose';
  /** Worker lock lifetime; a killed worker's job is retried this long after its last renewal. */
  workerLockDurationMs: number;
  /** How often workers look for jobs whose lock expired. */
  workerStalledIntervalMs: number;
  /**
   * `child`: a job that stalled before (its worker died while running it) runs in a child
   * process, so that a job which kills its process kills only that child. `off`: in process.
   */
  workerQuarantine: 'child' | 'off';
  /** How long a quarantined job may run before its child process is killed. */
  workerQuarantineTimeoutMs: number;
  /** How many quarantine child processes a worker may run at once, one job each. */
  workerQuarantineProcesses: number;
  /** BullMQ's stall limit; `undefined`: 3 with quarantine, BullMQ's 1 without. */
  workerMaxStalledCount: number | undefined;
  /** Set by a worker for the child process it starts: run quarantined jobs, nothing else. */
  workerQuarantineChild: boolean;
  /**
   * Stream entries the ledger may have left unread in a queue's event stream before the workers
   * of that queue stop taking jobs (0: never). Below `eventsMaxLen`, so that BullMQ's trimming
   * cannot drop transitions the ledger has not read.
   */
  workerLedgerBacklogLimit: number;
  /**
   * Unread entries of a queue's event stream at which enqueues of that queue are refused (503
   * over HTTP) until the ledger catches up (0: never). Below `eventsMaxLen`.
   */
  producerLedgerBacklogLimit: number;
  /** Whether payload values in handler error messages are replaced by [redacted]. */
  redactErrorPayloads: boolean;
  /** Adds the diagnostic job types (no-op, sleep, fail N times) used by tests and the benchmark. */
  diagnosticJobs: boolean;
  /** A file the diagnostic handlers append each start and completion to (fault drills). */
  diagnosticExecutionLog: string | undefined;
  /** Whether api and ledger processes apply pending migrations at start. */
  runMigrations: boolean;
}

export class ConfigValidationError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigValidationError';
  }
}

type Env = Record<string, string | undefined>;

const DEFAULT_DATABASE_URL = 'mysql://root@127.0.0.1:3306/ledger_queue';
const LOG_LEVELS = ['error', 'warn', 'log', 'debug', 'verbose'] as const;

/**
 * Reads and validates the whole environment once. Every bad variable is named in one error, so
 * an operator fixes them all in one go.
 */
export function loadAppConfig(env: Env = process.env): AppConfig {
  const problems: string[] = [];
  const reader = new EnvReader(env, problems);
  const eventsMaxLen = reader.integer('EVENTS_MAX_LEN', DEFAULT_EVENTS_MAX_LEN, 1_000, 10_000_000);

  const config: AppConfig = {
    redisUrl: reader.url('REDIS_URL', 'redis://127.0.0.1:6379', ['redis:', 'rediss:']),
    database: reader.database('DATABASE_URL', DEFAULT_DATABASE_URL),
    port: reader.integer('PORT', 3000, 0, 65535),
    roles: reader.roles('ROLES'),
    queuePrefix: reader.pattern(
      'QUEUE_PREFIX',
      'lq',
      /^[A-Za-z0-9_{}.-]{1,64}$/,
      'letters, digits, _ . - { }',
    ),
    workerJobTypes: reader.optionalList('WORKER_JOB_TYPES'),
    workerConcurrency: reader.integer('WORKER_CONCURRENCY', 10, 1, 10_000),
    workerConcurrencyByType: reader.concurrencyByType('WORKER_CONCURRENCY_BY_TYPE'),
    workerName: env.WORKER_NAME ?? `${hostname()}:${process.pid}`,
    shutdownTimeoutMs: reader.integer('SHUTDOWN_TIMEOUT_MS', 30_000, 0, 3_600_000),
    payloadLimitBytes: reader.integer('PAYLOAD_LIMIT_BYTES', 256 * 1024, 1, 16 * 1024 * 1024),
    eventsMaxLen,
    dispatchGraceMs: reader.integer('DISPATCH_GRACE_MS', 10_000, 100, 3_600_000),
    dispatchTimeoutMs: reader.integer('DISPATCH_TIMEOUT_MS', 2_000, 50, 60_000),
    enqueueWhenRedisDown: reader.oneOf('ENQUEUE_WHEN_REDIS_DOWN', 'accept', ['accept', 'refuse']),
    reconcileIntervalMs: reader.integer('RECONCILE_INTERVAL_MS', 30_000, 100, 86_400_000),
    dispatchIntervalMs: reader.integer('DISPATCH_INTERVAL_MS', 2_000, 100, 3_600_000),
    ledgerBatchWaitMs: reader.integer('LEDGER_BATCH_WAIT_MS', 20, 0, 1_000),
    ledgerCursorSaveDeferMs: reader.integer('LEDGER_CURSOR_SAVE_DEFER_MS', 1_000, 0, 60_000),
    logLevel: reader.oneOf('LOG_LEVEL', 'log', LOG_LEVELS),
    workerLockDurationMs: reader.integer('WORKER_LOCK_DURATION_MS', 30_000, 500, 3_600_000),
    workerStalledIntervalMs: reader.integer('WORKER_STALLED_INTERVAL_MS', 30_000, 100, 3_600_000),
    workerQuarantine: reader.oneOf('WORKER_QUARANTINE', 'child', ['child', 'off']),
    workerQuarantineTimeoutMs: reader.integer(
      'WORKER_QUARANTINE_TIMEOUT_MS',
      300_000,
      1_000,
      86_400_000,
    ),
    workerQuarantineProcesses: reader.integer('WORKER_QUARANTINE_PROCESSES', 2, 1, 32),
    workerMaxStalledCount: reader.integer('WORKER_MAX_STALLED_COUNT', undefined, 0, 1_000),
    workerQuarantineChild:
      reader.oneOf('WORKER_QUARANTINE_CHILD', 'false', ['true', 'false']) === 'true',
    workerLedgerBacklogLimit: readBacklogLimit(reader, 'WORKER_LEDGER_BACKLOG_LIMIT', {
      eventsMaxLen,
      defaultShare: 0.5,
      problems,
    }),
    producerLedgerBacklogLimit: readBacklogLimit(reader, 'PRODUCER_LEDGER_BACKLOG_LIMIT', {
      eventsMaxLen,
      defaultShare: PRODUCER_BACKLOG_SHARE,
      problems,
    }),
    redactErrorPayloads:
      reader.oneOf('REDACT_ERROR_PAYLOADS', 'true', ['true', 'false']) === 'true',
    diagnosticJobs: reader.oneOf('DIAGNOSTIC_JOBS', 'false', ['true', 'false']) === 'true',
    diagnosticExecutionLog: env.DIAGNOSTIC_EXECUTION_LOG || undefined,
    runMigrations: reader.oneOf('RUN_MIGRATIONS', 'true', ['true', 'false']) === 'true',
  };

  if (problems.length > 0) {
    throw new ConfigValidationError(problems);
  }

  return config;
}

/**
 * A share of the stream's length by default: half for workers, leaving room for the events that
 * arrive while they stop; 80% for producers, above it.
 */
function readBacklogLimit(
  reader: EnvReader,
  key: string,
  { eventsMaxLen, defaultShare, problems }: BacklogLimitRule,
): number {
  const limit = reader.integer(key, Math.floor(eventsMaxLen * defaultShare), 0, 10_000_000);
  if (limit >= eventsMaxLen) {
    problems.push(`${key}=${limit}: expected less than EVENTS_MAX_LEN (${eventsMaxLen})`);
  }

  return limit;
}

interface BacklogLimitRule {
  eventsMaxLen: number;
  defaultShare: number;
  problems: string[];
}

class EnvReader {
  constructor(
    private readonly env: Env,
    private readonly problems: string[],
  ) {}

  integer<T extends number | undefined>(
    key: string,
    fallback: T,
    min: number,
    max: number,
  ): number | T {
    const raw = this.env[key];
    if (raw === undefined || raw === '') {
      return fallback;
    }

    const value = Number(raw);
    if (!/^-?\d+$/.test(raw.trim()) || value < min || value > max) {
      this.problems.push(`${key}=${raw}: expected an integer from ${min} to ${max}`);

      return fallback;
    }

    return value;
  }

  oneOf<T extends string>(key: string, fallback: T, allowed: readonly T[]): T {
    const raw = this.env[key];
    if (raw === undefined || raw === '') {
      return fallback;
    }

    if (!allowed.includes(raw as T)) {
      this.problems.push(`${key}=${raw}: expected one of ${allowed.join(', ')}`);

      return fallback;
    }

    return raw as T;
  }

  pattern(key: string, fallback: string, rule: RegExp, description: string): string {
    const raw = this.env[key];
    if (raw === undefined || raw === '') {
      return fallback;
    }

    if (!rule.test(raw)) {
      this.problems.push(`${key}=${raw}: expected 1 to 64 characters from ${description}`);

      return fallback;
    }

    return raw;
  }

  optionalList(key: string): string[] | undefined {
    const raw = this.env[key];
    if (raw === undefined || raw.trim() === '' || raw.trim() === 'all') {
      return undefined;
    }

    return raw
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item.length > 0);
  }

  /** `type:n,type:n`, each n an integer from 1 to 10000. */
  concurrencyByType(key: string): Record<string, number> {
    const entries = this.optionalList(key) ?? [];
    const result: Record<string, number> = {};

    for (const entry of entries) {
      const match = /^([a-z][a-z0-9_]{0,99}):(\d{1,5})$/.exec(entry);
      const value = match ? Number(match[2]) : 0;
      if (!match || value < 1 || value > 10_000) {
        this.problems.push(
          `${key}: expected a comma-separated list of job_type:concurrency (1 to 10000), got "${entry}"`,
        );
        continue;
      }
      result[match[1]] = value;
    }

    return result;
  }

  roles(key: string): Role[] {
    const requested = this.optionalList(key);
    if (requested === undefined) {
      return [...ROLES];
    }

    const unknown = requested.filter((role) => !ROLES.includes(role as Role));
    if (unknown.length > 0 || requested.length === 0) {
      this.problems.push(
        `${key}=${this.env[key]}: expected a comma-separated list of ${ROLES.join(', ')} or "all"`,
      );

      return [...ROLES];
    }

    return [...new Set(requested as Role[])];
  }

  url(key: string, fallback: string, protocols: string[]): string {
    const raw = this.env[key] || fallback;
    const parsed = this.parseUrl(key, raw);
    if (parsed && !protocols.includes(parsed.protocol)) {
      const schemes = protocols.map((protocol) => `${protocol}//`).join(' or ');
      this.problems.push(`${key}: expected a URL starting with ${schemes}`);
    }

    return raw;
  }

  database(key: string, fallback: string): DatabaseConfig {
    const raw = this.env[key] || fallback;
    const parsed = this.parseUrl(key, raw);
    const database = parsed ? this.decode(key, parsed.pathname.replace(/^\//, '')) : '';

    if (parsed && !['mysql:', 'mariadb:'].includes(parsed.protocol)) {
      this.problems.push(`${key}: expected mysql://user:password@host:port/database`);
    }

    if (parsed && !/^[A-Za-z0-9_]{1,64}$/.test(database)) {
      this.problems.push(
        `${key}: expected a database name of letters, digits and _ after the host`,
      );
    }

    return {
      host: (parsed?.hostname || '127.0.0.1').replace(/^\[(.*)\]$/, '$1'),
      port: parsed?.port ? Number(parsed.port) : 3306,
      user: (parsed && this.decode(key, parsed.username)) || 'root',
      password: parsed ? this.decode(key, parsed.password) : '',
      database,
    };
  }

  private decode(key: string, part: string): string {
    try {
      return decodeURIComponent(part);
    } catch {
      this.problems.push(
        `${key}: expected URL-encoded user, password and database (write % as %25)`,
      );

      return '';
    }
  }

  private parseUrl(key: string, raw: string): URL | undefined {
    try {
      return new URL(raw);
    } catch {
      // The value may hold a password, so it is not repeated in the message.
      this.problems.push(`${key}: expected a URL, got something that does not parse as one`);

      return undefined;
    }
  }
}

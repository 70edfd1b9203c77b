import { REDIS_DATA_LOSS_NOTE } from '../../src/modules/ledger/ledger.constants';
import { ChaosCluster, PREFIX } from './chaos-cluster';

export interface AuditResult {
  /** Rows in the ledger: every job whose enqueue committed. */
  accepted: number;
  completed: number;
  failed: number;
  /** Accepted jobs that did not reach their expected final status (collateral excluded). */
  lost: number;
  /**
   * Jobs failed by BullMQ's stall limit only because they ran in the same worker process as a
   * job that kept killing it.
   */
  collateral: number;
  /** Jobs the API acknowledged (201) that have no ledger row. */
  acknowledgedWithoutRow: number;
  /** Jobs whose handler completed more than once (at-least-once execution). */
  duplicateExecutions: number;
  /** Executions of jobs that have no ledger row. */
  invented: number;
  /** Rows whose status or attempt count disagrees with Redis or with the real starts. */
  wrongRows: number;
  /**
   * Rows marked as having lost starts with Redis's data, whose attempt count is below the real
   * starts (never above): the ledger says so in their history instead of claiming a count.
   */
  markedUncounted: number;
  /** Broken chains, missing or repeated transitions in the history. */
  historyAnomalies: number;
  convergeSeconds: number;
  details: string[];
}

interface Row {
  id: number;
  job_type: string;
  status: string;
  attempt_count: number;
  error_message: string | null;
}

interface Transition {
  job_id: number;
  from_status: string | null;
  to_status: string;
  event_id: string | null;
  note: string | null;
}

const STALL_LIMIT_REASON = 'job stalled more than allowable limit';

/**
 * Waits until every row is finished (or the deadline passes), then compares the ledger with the
 * independent execution log and with Redis.
 */
export async function auditLedger(
  cluster: ChaosCluster,
  acknowledged: number[],
  expectedStatus: (jobType: string) => 'completed' | 'failed',
  since: number,
  deadlineMs = 120_000,
): Promise<AuditResult> {
  const convergeSeconds = await waitUntilFinished(cluster, since, deadlineMs);
  const rows = await cluster.query<Row>(
    'SELECT id, job_type, status, attempt_count, error_message FROM job_queue ORDER BY id',
  );
  const history = await cluster.query<Transition>(
    'SELECT job_id, from_status, to_status, event_id, note FROM job_queue_history ORDER BY id',
  );
  const details: string[] = [];
  const byId = new Map(rows.map((row) => [Number(row.id), row]));
  const executions = countExecutions(cluster);

  const missed = rows.filter((row) => row.status !== expectedStatus(row.job_type));
  const isCollateral = (row: Row) =>
    row.status === 'failed' && row.error_message === STALL_LIMIT_REASON;
  const lost = missed.filter((row) => !isCollateral(row));
  const collateral = missed.filter(isCollateral);
  collateral.slice(0, 3).forEach((row) => details.push(`collateral failure: ${describe(row)}`));
  lost.slice(0, 5).forEach((row) => details.push(`not finished as expected: ${describe(row)}`));
  const withoutRow = acknowledged.filter((id) => !byId.has(id));
  const invented = [...executions.keys()].filter((id) => !byId.has(id));
  const duplicates = [...executions.values()].filter((count) => count.done > 1).length;
  const marked = markedForDataLoss(history);
  const counts = { interrupted: interruptedStarts(history), marked };
  const { wrong, markedUncounted } = await wrongRows(cluster, rows, executions, counts, details);
  if (process.env.CHAOS_VERBOSE && wrong > 0) {
    const firstWrong = details
      .find((line) => line.startsWith('wrong row'))
      ?.match(/job (\d+)/)?.[1];
    const trail = history.filter((t) => String(t.job_id) === firstWrong);
    details.push(`history of ${firstWrong}: ${JSON.stringify(trail)}`);
  }
  const anomalies = historyAnomalies(rows, history, details);

  return {
    accepted: rows.length,
    completed: rows.filter((row) => row.status === 'completed').length,
    failed: rows.filter((row) => row.status === 'failed').length,
    lost: lost.length,
    collateral: collateral.length,
    acknowledgedWithoutRow: withoutRow.length,
    duplicateExecutions: duplicates,
    invented: invented.length,
    wrongRows: wrong,
    markedUncounted,
    historyAnomalies: anomalies,
    convergeSeconds,
    details,
  };
}

async function waitUntilFinished(
  cluster: ChaosCluster,
  since: number,
  deadlineMs: number,
): Promise<number> {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    const [{ open }] = await cluster.query<{ open: number }>(
      `SELECT COUNT(*) AS open FROM job_queue WHERE status IN ('pending', 'processing')`,
    );
    if (Number(open) === 0) {
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  return Math.round((Date.now() - since) / 100) / 10;
}

function countExecutions(cluster: ChaosCluster): Map<number, { start: number; done: number }> {
  const counts = new Map<number, { start: number; done: number }>();
  for (const { kind, id } of cluster.executions()) {
    const count = counts.get(id) ?? { start: 0, done: 0 };
    count[kind] += 1;
    counts.set(id, count);
  }

  return counts;
}

/**
 * Per job, how many of its starts ended with the worker lost (stalled) or the job lost from
 * Redis: such a start may have been taken by a worker that died before calling the handler.
 */
function interruptedStarts(history: Transition[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const transition of history) {
    const interrupted =
      transition.from_status === 'processing' &&
      transition.to_status === 'pending' &&
      /stalled|missing from Redis/.test(transition.note ?? '');
    if (interrupted) {
      counts.set(Number(transition.job_id), (counts.get(Number(transition.job_id)) ?? 0) + 1);
    }
  }

  return counts;
}

/** Jobs whose history carries the mark that Redis lost its data while they were unfinished. */
function markedForDataLoss(history: Transition[]): Set<number> {
  return new Set(
    history
      .filter((transition) => transition.note === REDIS_DATA_LOSS_NOTE)
      .map((transition) => Number(transition.job_id)),
  );
}

/**
 * A finished row must match the set its job sits in, if Redis still holds it, and its
 * attempt count must equal the starts the handlers saw, give or take the interrupted starts a
 * handler may never have seen. BullMQ moves a job past its stall limit to active only to fail
 * it, without running the handler: that last start is BullMQ's, not a handler's. A row marked
 * for a Redis data loss may count fewer starts than the handlers saw, never more.
 */
async function wrongRows(
  cluster: ChaosCluster,
  rows: Row[],
  executions: Map<number, { start: number; done: number }>,
  counts: { interrupted: Map<number, number>; marked: Set<number> },
  details: string[],
): Promise<{ wrong: number; markedUncounted: number }> {
  const redis = cluster.redisClient();
  let wrong = 0;
  let markedUncounted = 0;

  try {
    const pipeline = redis.pipeline();
    for (const row of rows) {
      const key = `${PREFIX}:${row.job_type}`;
      pipeline.zscore(`${key}:completed`, `job-${row.id}`);
      pipeline.zscore(`${key}:failed`, `job-${row.id}`);
      pipeline.exists(`${key}:job-${row.id}`);
    }
    const results = (await pipeline.exec()) ?? [];

    rows.forEach((row, index) => {
      const [completed, failed, exists] = results.slice(index * 3, index * 3 + 3).map((r) => r[1]);
      const inRedisAs = completed !== null ? 'completed' : failed !== null ? 'failed' : 'other';
      const redisDisagrees = exists === 1 && inRedisAs !== row.status;
      const starts = executions.get(Number(row.id))?.start ?? 0;
      const bookkeepingStart = row.error_message === STALL_LIMIT_REASON ? 1 : 0;
      const unseen = row.attempt_count - bookkeepingStart - starts;
      const uncountedButMarked = unseen < 0 && counts.marked.has(Number(row.id));
      const countDisagrees =
        (unseen < 0 && !uncountedButMarked) ||
        unseen > (counts.interrupted.get(Number(row.id)) ?? 0);
      markedUncounted += uncountedButMarked ? 1 : 0;

      if (redisDisagrees || countDisagrees) {
        wrong += 1;
        if (details.length < 10) {
          details.push(
            `wrong row: ${describe(row)}; Redis: ${exists === 1 ? inRedisAs : 'gone'}; starts: ${starts}`,
          );
        }
      }
    });
  } finally {
    redis.disconnect();
  }

  return { wrong, markedUncounted };
}

function historyAnomalies(rows: Row[], history: Transition[], details: string[]): number {
  const byJob = new Map<number, Transition[]>();
  for (const transition of history) {
    const list = byJob.get(Number(transition.job_id)) ?? [];
    list.push(transition);
    byJob.set(Number(transition.job_id), list);
  }

  let anomalies = 0;
  for (const row of rows) {
    const problem = historyProblem(row, byJob.get(Number(row.id)) ?? []);
    if (problem) {
      anomalies += 1;
      if (details.length < 15) {
        details.push(`history of ${describe(row)}: ${problem}`);
      }
    }
  }

  return anomalies;
}

function historyProblem(row: Row, transitions: Transition[]): string | undefined {
  if (transitions[0]?.from_status !== null || transitions[0]?.to_status !== 'pending') {
    return 'does not start with its creation';
  }

  for (let index = 1; index < transitions.length; index++) {
    if (transitions[index].from_status !== transitions[index - 1].to_status) {
      return `broken chain at transition ${index + 1}`;
    }
  }

  const eventIds = transitions.map((t) => t.event_id).filter((id) => id !== null);
  if (new Set(eventIds).size !== eventIds.length) {
    return 'an event was recorded twice';
  }

  const terminal = transitions.filter(
    (t) => t.to_status === 'completed' || t.to_status === 'failed',
  );
  if (terminal.length !== 1 || transitions[transitions.length - 1].to_status !== row.status) {
    return `${terminal.length} terminal transitions; last is ${transitions[transitions.length - 1].to_status}`;
  }

  const starts = transitions.filter(
    (t) => t.to_status === 'processing' && t.from_status !== 'processing',
  ).length;
  if (starts !== row.attempt_count) {
    return `${starts} starts recorded for attempt_count ${row.attempt_count}`;
  }

  return undefined;
}

function describe(row: Row): string {
  return `job ${row.id} (${row.job_type}, ${row.status}, attempts ${row.attempt_count})`;
}

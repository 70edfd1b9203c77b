import { cpus } from 'node:os';

import { ChaosCluster } from './chaos-cluster';
import { auditLedger, AuditResult } from './ledger-audit';
import { Scenario, SCENARIOS } from './scenarios';

/**
 * The fault suite. `npm test` runs the fast scenarios with a small load; `npm run chaos` runs
 * them all with CHAOS_JOBS jobs each and prints the table and a JSON summary line.
 */
const JOBS = Number(process.env.CHAOS_JOBS ?? 300);
const ALL = process.env.CHAOS_SCENARIOS === 'all';
const ONLY = process.env.CHAOS_ONLY;
const selected = SCENARIOS.filter(
  (scenario) => (ALL || scenario.fast) && (!ONLY || scenario.name.includes(ONLY)),
);

interface Row extends AuditResult {
  scenario: string;
  refused: number;
  slowestEnqueueMs: number;
}

const results: Row[] = [];

describe('fault suite: nothing lost, nothing invented', () => {
  afterAll(() => {
    process.stdout.write(`\n${table(results)}\n`);
    const summary = {
      chaos: {
        jobsPerScenario: JOBS,
        machine: `${cpus().length} cores`,
        scenarios: results.map(({ details: _details, ...row }) => row),
        lost: results.reduce((sum, row) => sum + row.lost + row.acknowledgedWithoutRow, 0),
        collateral: results.reduce((sum, row) => sum + row.collateral, 0),
        wrongRows: results.reduce((sum, row) => sum + row.wrongRows, 0),
      },
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  });

  it.each(selected.map((scenario) => [scenario.name, scenario] as const))(
    '%s: every accepted job finishes once in the ledger, as Redis and the executions say',
    async (_name: string, scenario: Scenario) => {
      const cluster = await ChaosCluster.start(scenario.cluster);
      try {
        const run = await scenario.run(cluster, JOBS);
        const audit = await auditLedger(
          cluster,
          run.acknowledged,
          scenario.expectedStatus ?? (() => 'completed'),
          run.faultEndedAt,
        );
        results.push({
          scenario: scenario.name,
          refused: run.refused,
          slowestEnqueueMs: run.slowestEnqueueMs,
          ...audit,
        });

        const faults =
          audit.lost + audit.collateral + audit.acknowledgedWithoutRow + audit.invented;
        expect({
          faults: faults + audit.wrongRows + audit.historyAnomalies,
          details: audit.details,
        }).toEqual({
          faults: 0,
          details: [],
        });
        expect(await (scenario.verify?.(cluster, run) ?? [])).toEqual([]);
        expect(audit.accepted).toBeGreaterThan(0);
        expect(audit.invented).toBe(0);
        expect(audit.wrongRows).toBe(0);
        expect(audit.historyAnomalies).toBe(0);
      } finally {
        if (process.env.CHAOS_VERBOSE) {
          for (const [name, role] of cluster.roles) {
            process.stdout.write(`--- ${name}\n${role.output().slice(-4000)}\n`);
          }
        }
        await cluster.destroy();
      }
    },
    300_000,
  );
});

function table(rows: Row[]): string {
  const header = [
    'scenario',
    'accepted',
    'completed',
    'failed',
    'lost',
    'collateral',
    'dup. exec.',
    'wrong rows',
    'marked uncounted',
    'history anomalies',
    'refused (503)',
    'converge s',
  ];
  const lines = rows.map((row) => [
    row.scenario,
    row.accepted,
    row.completed,
    row.failed,
    row.lost + row.acknowledgedWithoutRow,
    row.collateral,
    row.duplicateExecutions,
    row.wrongRows,
    row.markedUncounted,
    row.historyAnomalies,
    row.refused,
    row.convergeSeconds,
  ]);

  return [header, ...lines].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

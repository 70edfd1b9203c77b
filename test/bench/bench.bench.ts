import { randomBytes } from 'node:crypto';

import Redis from 'ioredis';

import {
  BenchOptions,
  deleteKeys,
  drainDeadlineMs,
  unpacedTotal,
  readBenchOptions,
  RoundResult,
} from './bench-support';
import { describeMachine, header, RoundPair, roundLines, summarise, table } from './bench-report';
import { runLedgerRound } from './ledger-queue.round';
import { runPlainRound } from './plain-bullmq.round';

/**
 * `npm run bench`: plain BullMQ against this project on the same Redis and MariaDB, in
 * alternating rounds. Prints the setup, a table of medians and one JSON summary line; fails if
 * a ledger row or its history is wrong.
 */
const options = readBenchOptions();
const runId = randomBytes(4).toString('hex');
const keyPattern = `lqbench-${runId}-*`;
const perRoundMs = 2 * drainDeadlineMs(unpacedTotal(options)) + 120_000;

describe('benchmark: plain BullMQ against ledger-queue', () => {
  afterAll(async () => {
    const redis = new Redis(options.redisUrl);
    await deleteKeys(redis, keyPattern).finally(() => redis.disconnect());
  });

  it(
    'measures enqueue and drain throughput, and every ledger row ends completed once',
    async () => {
      const machine = await describeMachine(options);
      process.stdout.write(`\n${header(options, machine)}\n`);

      const pairs: RoundPair[] = [];
      for (let round = 1; round <= options.rounds; round++) {
        pairs.push(await runRound(options, round));
        process.stdout.write(`${roundLines(pairs.slice(-1))}\n`);
      }

      const summary = summarise(pairs);
      process.stdout.write(`\n${table(summary)}\n\n`);
      const report = { options: publicOptions(options), machine, median: summary, rounds: pairs };
      process.stdout.write(`${JSON.stringify({ bench: report })}\n`);
    },
    options.rounds * perRoundMs,
  );
});

/** One round runs both sides; odd rounds start with plain BullMQ, even ones with the project. */
async function runRound(benchOptions: BenchOptions, round: number): Promise<RoundPair> {
  const plainFirst = round % 2 === 1;
  const plain = (): Promise<RoundResult> =>
    runPlainRound(benchOptions, `lqbench-${runId}-plain${round}`);
  const project = (): Promise<RoundResult> =>
    runLedgerRound(benchOptions, `lqbench-${runId}-lq${round}`, `lq_bench_${runId}_r${round}`);

  if (plainFirst) {
    const plainResult = await plain();

    return { round, order: 'plain first', plain: plainResult, project: await project() };
  }

  const projectResult = await project();

  return { round, order: 'project first', plain: await plain(), project: projectResult };
}

function publicOptions(benchOptions: BenchOptions): BenchOptions {
  // The MariaDB URL may carry a password; only its host and port reach the printed summary.
  const url = new URL(benchOptions.mysqlUrl);

  return { ...benchOptions, mysqlUrl: `${url.protocol}//${url.host}` };
}

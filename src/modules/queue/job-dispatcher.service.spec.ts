import { Logger } from '@nestjs/common';
import { JobsOptions } from 'bullmq';

import { JobEntity } from '../../entities';
import { JobDispatcher, SEND_CHUNK_SIZE } from './job-dispatcher.service';
import { JobTypeDefinition } from './job-type.interface';
import { QueueRegistry } from './queue-registry.service';
import { toBullJobId, toBullPriority } from './queue.constants';
import { RESUMED_EXPONENTIAL_BACKOFF } from './resumed-backoff';

interface SentJob {
  name: string;
  opts: JobsOptions;
}

const CATALOGUE: JobTypeDefinition[] = [
  { name: 'report_generate' },
  { name: 'audit_write', prioritized: true },
  { name: 'event_forward', prioritized: false },
];

/** A registry whose queues record what `addBulk` was given instead of talking to Redis. */
function fakeRegistry(sent: SentJob[]): QueueRegistry {
  const queue = {
    addBulk: (jobs: SentJob[]) => {
      sent.push(...jobs);

      return Promise.resolve(jobs);
    },
  };

  return {
    options: { dispatchTimeoutMs: 1_000, dispatchGraceMs: 10_000 },
    catalogue: new Map(CATALOGUE.map((definition) => [definition.name, definition])),
    queue: () => queue,
  } as unknown as QueueRegistry;
}

let nextId = 1;

function row(jobType: string, priority: number): JobEntity {
  return {
    id: nextId++,
    jobType,
    payload: '{}',
    priority,
    attemptCount: 0,
    maxAttempts: 1,
    backoffStrategy: null,
    backoffDelayMs: null,
    backoffJitter: null,
    runAt: null,
  } as JobEntity;
}

describe('JobDispatcher', () => {
  let sent: SentJob[];
  let dispatcher: JobDispatcher;
  let warn: jest.SpyInstance;

  beforeEach(() => {
    sent = [];
    dispatcher = new JobDispatcher(fakeRegistry(sent));
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });

  afterEach(() => warn.mockRestore());

  describe('when the job type is prioritized', () => {
    it.each([
      ['by default', 'report_generate'],
      ['when declared so', 'audit_write'],
      ['when not declared at all', 'legacy_type'],
    ])('sends every job with its BullMQ priority, also priority 0 (%s)', async (_case, jobType) => {
      await dispatcher.dispatch([row(jobType, 0), row(jobType, 7)]);

      expect(sent.map((job) => job.opts.priority)).toEqual([toBullPriority(0), toBullPriority(7)]);
    });
  });

  describe('when the job type runs in arrival order', () => {
    it('sends its jobs without a priority option, so they join the wait list', async () => {
      await dispatcher.dispatch([row('event_forward', 0), row('event_forward', 0)]);

      expect(sent).toHaveLength(2);
      for (const job of sent) {
        expect(job.opts).not.toHaveProperty('priority');
      }
      expect(warn).not.toHaveBeenCalled();
    });

    it('still sends a row recorded with a priority, without it, and warns once per type', async () => {
      const first = row('event_forward', 4);

      await dispatcher.dispatch([first, row('event_forward', 9)]);
      await dispatcher.dispatch([row('event_forward', 2)]);

      expect(sent).toHaveLength(3);
      expect(sent.some((job) => 'priority' in job.opts)).toBe(false);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn).toHaveBeenCalledWith(
        expect.objectContaining({ jobType: 'event_forward', firstJobId: first.id, priority: 4 }),
      );
    });

    it('leaves the priorities of other types in the same dispatch alone', async () => {
      await dispatcher.dispatch([row('event_forward', 0), row('report_generate', 3)]);

      expect(sent.map((job) => [job.name, job.opts.priority])).toEqual([
        ['event_forward', undefined],
        ['report_generate', toBullPriority(3)],
      ]);
    });
  });

  describe('backoff', () => {
    const withBackoff = (strategy: 'fixed' | 'exponential', attemptCount: number): JobEntity => ({
      ...row('report_generate', 0),
      attemptCount,
      maxAttempts: 5,
      backoffStrategy: strategy,
      backoffDelayMs: 300,
      backoffJitter: 0.2,
    });

    it("sends a first send's backoff as BullMQ's own strategy", async () => {
      await dispatcher.dispatch([withBackoff('exponential', 0), withBackoff('fixed', 0)]);

      expect(sent.map((job) => job.opts.backoff)).toEqual([
        { type: 'exponential', delay: 300, jitter: 0.2 },
        { type: 'fixed', delay: 300, jitter: 0.2 },
      ]);
    });

    it('sends an exponential job sent again with the strategy that counts earlier attempts', async () => {
      await dispatcher.dispatch([withBackoff('exponential', 2), withBackoff('fixed', 2)]);

      expect(sent.map((job) => [job.name, job.opts.backoff])).toEqual([
        ['report_generate#2', { type: RESUMED_EXPONENTIAL_BACKOFF, delay: 300, jitter: 0.2 }],
        ['report_generate#2', { type: 'fixed', delay: 300, jitter: 0.2 }],
      ]);
    });

    it('sends no backoff for a job without one', async () => {
      await dispatcher.dispatch([row('report_generate', 0)]);

      expect(sent[0].opts.backoff).toBeUndefined();
    });
  });

  describe('a large send', () => {
    /** A queue that records each `addBulk` call and refuses the calls whose number is listed. */
    function recordingDispatcher(refusedCalls: number[]) {
      const calls: SentJob[][] = [];
      const queue = {
        addBulk: (jobs: SentJob[]) => {
          calls.push(jobs);

          return refusedCalls.includes(calls.length)
            ? Promise.reject(new Error('connection lost'))
            : Promise.resolve(jobs);
        },
      };
      const registry = { ...fakeRegistry([]), queue: () => queue } as unknown as QueueRegistry;

      return { calls, dispatcher: new JobDispatcher(registry) };
    }

    const rows = (count: number) => Array.from({ length: count }, () => row('report_generate', 0));

    it(`goes in addBulk calls of at most ${SEND_CHUNK_SIZE} jobs, in order`, async () => {
      const { calls, dispatcher: chunking } = recordingDispatcher([]);
      const batch = rows(SEND_CHUNK_SIZE * 2 + 5);

      const sentCount = await chunking.dispatch(batch);

      expect(sentCount).toBe(batch.length);
      expect(calls.map((call) => call.length)).toEqual([SEND_CHUNK_SIZE, SEND_CHUNK_SIZE, 5]);
      expect(calls.flat().map((job) => job.opts.jobId)).toEqual(
        batch.map((sentRow) => toBullJobId(sentRow.id)),
      );
    });

    it('counts only the calls that arrived, and names the jobs of a refused one', async () => {
      const { dispatcher: chunking } = recordingDispatcher([2]);
      const batch = rows(SEND_CHUNK_SIZE * 2 + 5);

      const sentCount = await chunking.dispatch(batch);

      expect(sentCount).toBe(SEND_CHUNK_SIZE + 5);
      expect(warn).toHaveBeenCalledWith(
        expect.objectContaining({
          jobIds: batch.slice(SEND_CHUNK_SIZE, SEND_CHUNK_SIZE * 2).map((refused) => refused.id),
          error: 'connection lost',
        }),
      );
      // Redis failed: the next send is left to the ledger's dispatcher at once.
      expect(await chunking.dispatch(rows(1))).toBe(0);
    });
  });
});

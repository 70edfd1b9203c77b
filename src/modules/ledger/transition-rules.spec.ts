import { reconcileRow } from './ledger-repairer';
import { QueueEvent } from './queue-event';
import { RedisJobState } from './redis-job-state';
import { compareStreamIds, streamIdTime } from './stream-id';
import {
  applyEvent,
  canChangeRow,
  JobFacts,
  LedgerRowState,
  STALLED_MESSAGE,
  TransitionRecord,
} from './transition-rules';

const T0 = 1_700_000_000_000;

/** The stream id of an entry written `ms` after T0, with its sequence number. */
function streamId(ms: number, sequence = 0): string {
  return `${T0 + ms}-${sequence}`;
}

function queueEvent(id: string, name: string, fields: Record<string, string> = {}): QueueEvent {
  return {
    id,
    queue: 'q',
    event: name,
    jobId: 'job-7',
    fields: { event: name, jobId: 'job-7', ...fields },
  };
}

function pendingRow(overrides: Partial<LedgerRowState> = {}): LedgerRowState {
  return {
    id: 7,
    status: 'pending',
    attemptCount: 0,
    errorMessage: null,
    worker: null,
    runAt: new Date(T0 - 1000),
    dispatchedAt: null,
    startedAt: null,
    finishedAt: null,
    lastEventId: null,
    ...overrides,
  };
}

function processingRow(overrides: Partial<LedgerRowState> = {}): LedgerRowState {
  return pendingRow({
    status: 'processing',
    attemptCount: 1,
    worker: 'worker-a',
    dispatchedAt: new Date(T0 - 500),
    startedAt: new Date(T0 - 400),
    lastEventId: streamId(-400),
    ...overrides,
  });
}

describe('applyEvent', () => {
  describe('when a pending row becomes active', () => {
    it('moves it to processing, counts the attempt and dates the start from the stream id', () => {
      const row = pendingRow({ dispatchedAt: new Date(T0 - 500) });

      const outcome = applyEvent(row, queueEvent(streamId(20, 3), 'active', { prev: 'waiting' }), {
        processedBy: 'host-1:4242',
      });

      expect(outcome.changed).toBe(true);
      expect(row).toMatchObject({
        status: 'processing',
        attemptCount: 1,
        startedAt: new Date(T0 + 20),
        worker: 'host-1:4242',
        dispatchedAt: new Date(T0 - 500),
        lastEventId: streamId(20, 3),
      });
    });

    it('returns a pending → processing transition carrying the attempt number and worker', () => {
      const row = pendingRow({ attemptCount: 2, dispatchedAt: new Date(T0) });

      const { transition } = applyEvent(row, queueEvent(streamId(20), 'active'), {
        processedBy: 'host-1:4242',
      });

      expect(transition).toEqual<TransitionRecord>({
        jobId: 7,
        fromStatus: 'pending',
        toStatus: 'processing',
        attempt: 3,
        errorMessage: null,
        worker: 'host-1:4242',
        occurredAt: new Date(T0 + 20),
        source: 'event',
        eventId: streamId(20),
        note: null,
      });
    });

    it('fills dispatchedAt with the start time when the dispatch event was never seen', () => {
      const row = pendingRow();

      applyEvent(row, queueEvent(streamId(20), 'active'), {});

      expect(row.dispatchedAt).toEqual(new Date(T0 + 20));
    });

    it('leaves the worker empty when the job hash does not name one', () => {
      const row = pendingRow({ worker: 'stale-worker' });

      applyEvent(row, queueEvent(streamId(20), 'active'), {});

      expect(row.worker).toBeNull();
    });
  });

  describe('when a processing row sees active again', () => {
    it('ignores the event and keeps the attempt count', () => {
      const row = processingRow();
      const before = { ...row };

      const outcome = applyEvent(row, queueEvent(streamId(30), 'active'), { processedBy: 'other' });

      expect(outcome).toEqual({ changed: false });
      expect(row).toEqual(before);
    });
  });

  describe('when a processing row finishes', () => {
    it('completes it, dates the finish and clears the error of an earlier attempt', () => {
      const row = processingRow({ attemptCount: 2, errorMessage: 'timeout on attempt 1' });

      const outcome = applyEvent(
        row,
        queueEvent(streamId(50), 'completed', { returnvalue: '{"ok":true}' }),
        {},
      );

      expect(row).toMatchObject({
        status: 'completed',
        finishedAt: new Date(T0 + 50),
        errorMessage: null,
        lastEventId: streamId(50),
      });
      expect(outcome.transition).toMatchObject({
        fromStatus: 'processing',
        toStatus: 'completed',
        attempt: 2,
        errorMessage: null,
        worker: 'worker-a',
        note: null,
      });
    });

    it('fails it with the failedReason the event carries', () => {
      const row = processingRow({ attemptCount: 3 });

      const outcome = applyEvent(
        row,
        queueEvent(streamId(50), 'failed', { failedReason: 'SMTP 550: mailbox unavailable' }),
        { failedReason: 'an older reason from the hash' },
      );

      expect(row).toMatchObject({
        status: 'failed',
        finishedAt: new Date(T0 + 50),
        errorMessage: 'SMTP 550: mailbox unavailable',
      });
      expect(outcome.transition).toMatchObject({
        fromStatus: 'processing',
        toStatus: 'failed',
        attempt: 3,
        errorMessage: 'SMTP 550: mailbox unavailable',
      });
    });

    it('falls back to the reason in the job hash when the failed event has none', () => {
      const row = processingRow();

      applyEvent(row, queueEvent(streamId(50), 'failed'), { failedReason: 'from the hash' });

      expect(row.errorMessage).toBe('from the hash');
    });

    it('notes a finish whose start the ledger never recorded', () => {
      const row = pendingRow({ dispatchedAt: new Date(T0) });

      const { transition } = applyEvent(row, queueEvent(streamId(50), 'completed'), {});

      expect(row.status).toBe('completed');
      expect(transition).toMatchObject({
        fromStatus: 'pending',
        toStatus: 'completed',
        note: 'finished without a recorded start',
      });
    });
  });

  describe('when a failed attempt is retried with backoff', () => {
    it('returns the row to pending with the attempt error and the delayed run time', () => {
      const row = processingRow({ attemptCount: 1 });
      const retryAt = T0 + 5_000;

      const outcome = applyEvent(
        row,
        queueEvent(streamId(40), 'delayed', { delay: String(retryAt) }),
        { failedReason: 'connection reset' },
      );

      expect(row).toMatchObject({
        status: 'pending',
        attemptCount: 1,
        errorMessage: 'connection reset',
        runAt: new Date(retryAt),
        lastEventId: streamId(40),
      });
      expect(outcome.transition).toMatchObject({
        fromStatus: 'processing',
        toStatus: 'pending',
        attempt: 1,
        errorMessage: 'connection reset',
        occurredAt: new Date(T0 + 40),
        source: 'event',
        note: 'attempt failed; will retry',
      });
    });

    it("prefers the attempt's own error, kept by the worker, over BullMQ's latest reason", () => {
      const row = processingRow({ attemptCount: 2 });

      const outcome = applyEvent(
        row,
        queueEvent(streamId(40), 'delayed', { delay: String(T0 + 5_000) }),
        {
          failedReason: 'timeout on attempt 3',
          attemptErrors: { '1': 'refused on attempt 1', '2': 'reset on attempt 2' },
        },
      );

      expect(outcome.transition?.errorMessage).toBe('reset on attempt 2');
      expect(row.errorMessage).toBe('reset on attempt 2');
    });

    it('keeps the previous run time when the delay field is not a timestamp', () => {
      const row = processingRow({ runAt: new Date(T0 - 1000) });

      applyEvent(row, queueEvent(streamId(40), 'delayed', { delay: 'soon' }), {});

      expect(row.runAt).toEqual(new Date(T0 - 1000));
      expect(row.status).toBe('pending');
    });
  });

  describe('when a failed attempt is retried without backoff', () => {
    it('returns the row to pending with the attempt error from the job hash', () => {
      const row = processingRow();

      const outcome = applyEvent(
        row,
        queueEvent(streamId(40), 'waiting', { prev: 'active' }),
        { failedReason: 'handler threw' },
        false,
      );

      expect(row).toMatchObject({ status: 'pending', errorMessage: 'handler threw' });
      expect(outcome.transition).toMatchObject({
        fromStatus: 'processing',
        toStatus: 'pending',
        errorMessage: 'handler threw',
        note: 'attempt failed; will retry',
      });
    });
  });

  describe('when a stalled job is moved back to wait', () => {
    it('returns the row to pending with the stall message instead of an old failure', () => {
      const row = processingRow();

      const outcome = applyEvent(
        row,
        queueEvent(streamId(40), 'waiting', { prev: 'active' }),
        { failedReason: 'reason of an earlier attempt' },
        true,
      );

      expect(row).toMatchObject({ status: 'pending', errorMessage: STALLED_MESSAGE });
      expect(outcome.transition).toMatchObject({
        fromStatus: 'processing',
        toStatus: 'pending',
        errorMessage: STALLED_MESSAGE,
        note: 'stalled; moved back to wait',
      });
    });
  });

  describe('when a job reaches Redis', () => {
    it.each([
      ['added', {}],
      ['waiting', {}],
      ['waiting', { prev: 'prioritized' }],
    ])('writes nothing on %s %j: the row is not even read for it', (name, fields) => {
      const event = queueEvent(streamId(5), name, fields);
      const row = pendingRow();
      const before = { ...row };

      const outcome = applyEvent(row, event, {});

      expect(canChangeRow(event)).toBe(false);
      expect(outcome).toEqual({ changed: false });
      expect(row).toEqual(before);
    });

    it.each([
      ['waiting', { prev: 'active' }],
      ['delayed', {}],
      ['active', {}],
      ['completed', {}],
      ['failed', {}],
    ])('reads the row for %s %j', (name, fields) => {
      expect(canChangeRow(queueEvent(streamId(5), name, fields))).toBe(true);
    });

    it.each(['progress', 'stalled', 'removed', 'drained', ''])('ignores %j events', (name) => {
      expect(canChangeRow(queueEvent(streamId(5), name))).toBe(false);
    });

    it("fills dispatchedAt with the job's own added time when the job starts", () => {
      const row = pendingRow();

      applyEvent(row, queueEvent(streamId(20), 'active'), { addedAt: new Date(T0 + 3) });

      expect(row.dispatchedAt).toEqual(new Date(T0 + 3));
    });

    it('records the dispatch and the run time of a job delayed from the start', () => {
      const row = pendingRow();

      const outcome = applyEvent(
        row,
        queueEvent(streamId(5), 'delayed', { delay: String(T0 + 60_000) }),
        { addedAt: new Date(T0 + 1) },
      );

      expect(outcome).toEqual({ changed: true });
      expect(row).toMatchObject({
        status: 'pending',
        dispatchedAt: new Date(T0 + 1),
        runAt: new Date(T0 + 60_000),
      });
    });

    it('fills dispatchedAt when a job finishes without a recorded start', () => {
      const row = pendingRow();

      applyEvent(row, queueEvent(streamId(30), 'completed'), {});

      expect(row).toMatchObject({ status: 'completed', dispatchedAt: new Date(T0 + 30) });
    });
  });

  describe('when the event was already applied', () => {
    it('ignores an event whose id equals the last one applied', () => {
      const row = pendingRow({ dispatchedAt: new Date(T0), lastEventId: streamId(20) });
      const before = { ...row };

      const outcome = applyEvent(row, queueEvent(streamId(20), 'active'), {});

      expect(outcome).toEqual({ changed: false });
      expect(row).toEqual(before);
    });

    it('ignores an event from an earlier millisecond', () => {
      const row = processingRow({ lastEventId: streamId(20) });
      const before = { ...row };

      const outcome = applyEvent(row, queueEvent(streamId(10), 'completed'), {});

      expect(outcome).toEqual({ changed: false });
      expect(row).toEqual(before);
    });

    it('ignores an event of the same millisecond with a lower sequence number', () => {
      const row = processingRow({ lastEventId: streamId(20, 10) });
      const before = { ...row };

      const outcome = applyEvent(row, queueEvent(streamId(20, 9), 'failed'), {});

      expect(outcome).toEqual({ changed: false });
      expect(row).toEqual(before);
    });

    it('applies an event of the same millisecond with a higher sequence number', () => {
      const row = processingRow({ lastEventId: streamId(20, 9) });

      const outcome = applyEvent(row, queueEvent(streamId(20, 10), 'completed'), {});

      expect(outcome.changed).toBe(true);
      expect(row.status).toBe('completed');
    });
  });

  describe('when the row is terminal', () => {
    const events: Array<[string, Record<string, string>, boolean]> = [
      ['added', {}, false],
      ['waiting', {}, false],
      ['waiting', { prev: 'active' }, false],
      ['waiting', { prev: 'active' }, true],
      ['delayed', { delay: String(T0 + 9_000) }, false],
      ['active', { prev: 'waiting' }, false],
      ['completed', { returnvalue: 'null' }, false],
      ['failed', { failedReason: 'late failure' }, false],
      ['stalled', {}, false],
      ['removed', {}, false],
    ];

    it.each(['completed', 'failed'] as const)(
      'never changes a %s row, whatever the event',
      (status) => {
        for (const [name, fields, followedByStall] of events) {
          const row = processingRow({
            status,
            finishedAt: new Date(T0),
            errorMessage: status === 'failed' ? 'final reason' : null,
            lastEventId: streamId(0),
          });
          const before = { ...row };

          const outcome = applyEvent(
            row,
            queueEvent(streamId(100), name, fields),
            { processedBy: 'other', failedReason: 'other' },
            followedByStall,
          );

          expect(outcome).toEqual({ changed: false });
          expect(row).toEqual(before);
        }
      },
    );
  });

  describe('when the event is one the ledger does not track', () => {
    it.each(['stalled', 'removed', 'retries-exhausted', 'drained', 'progress', 'a-future-event'])(
      'changes nothing on %s',
      (name) => {
        const row = processingRow();
        const before = { ...row };

        const outcome = applyEvent(row, queueEvent(streamId(30), name), {
          failedReason: 'ignored',
        });

        expect(outcome).toEqual({ changed: false });
        expect(row).toEqual(before);
      },
    );
  });

  describe('when a whole job life is replayed', () => {
    const life: Array<[QueueEvent, JobFacts]> = [
      [queueEvent(streamId(0), 'added', { name: 'email_dispatch' }), {}],
      [queueEvent(streamId(0, 1), 'waiting'), {}],
      [
        queueEvent(streamId(10), 'active', { prev: 'waiting' }),
        { processedBy: 'worker-a', addedAt: new Date(T0) },
      ],
      [
        queueEvent(streamId(30), 'delayed', { delay: String(T0 + 230) }),
        { processedBy: 'worker-a', failedReason: 'timeout' },
      ],
      [queueEvent(streamId(230), 'active', { prev: 'delayed' }), { processedBy: 'worker-b' }],
      [
        queueEvent(streamId(250), 'completed', { returnvalue: '{"sent":1}' }),
        { processedBy: 'worker-b', failedReason: 'timeout' },
      ],
    ];

    function replay(row: LedgerRowState): TransitionRecord[] {
      return life.flatMap(([event, facts]) => applyEvent(row, event, facts).transition ?? []);
    }

    it('records each status change once, with the attempt it belongs to', () => {
      const row = pendingRow();

      const transitions = replay(row);

      expect(
        transitions.map(({ fromStatus, toStatus, attempt, errorMessage, worker }) => ({
          fromStatus,
          toStatus,
          attempt,
          errorMessage,
          worker,
        })),
      ).toEqual([
        {
          fromStatus: 'pending',
          toStatus: 'processing',
          attempt: 1,
          errorMessage: null,
          worker: 'worker-a',
        },
        {
          fromStatus: 'processing',
          toStatus: 'pending',
          attempt: 1,
          errorMessage: 'timeout',
          worker: 'worker-a',
        },
        {
          fromStatus: 'pending',
          toStatus: 'processing',
          attempt: 2,
          errorMessage: null,
          worker: 'worker-b',
        },
        {
          fromStatus: 'processing',
          toStatus: 'completed',
          attempt: 2,
          errorMessage: null,
          worker: 'worker-b',
        },
      ]);
      expect(transitions.map((transition) => transition.eventId)).toEqual([
        streamId(10),
        streamId(30),
        streamId(230),
        streamId(250),
      ]);
      expect(row).toMatchObject({
        status: 'completed',
        attemptCount: 2,
        errorMessage: null,
        worker: 'worker-b',
        runAt: new Date(T0 + 230),
        dispatchedAt: new Date(T0),
        startedAt: new Date(T0 + 230),
        finishedAt: new Date(T0 + 250),
        lastEventId: streamId(250),
      });
    });

    it('yields no transition and no change when the same events are applied again', () => {
      const row = pendingRow();
      replay(row);
      const afterFirst = { ...row };

      const second = life.map(([event, facts]) => applyEvent(row, event, facts));

      expect(second.every((outcome) => !outcome.changed && !outcome.transition)).toBe(true);
      expect(row).toEqual(afterFirst);
    });
  });
});

describe('reconcileRow', () => {
  function redisState(overrides: Partial<RedisJobState> = {}): RedisJobState {
    return {
      rowId: 7,
      status: 'completed',
      attemptsStarted: 1,
      failedReason: null,
      processedBy: 'worker-a',
      processedOn: new Date(T0 + 10),
      finishedOn: new Date(T0 + 60),
      ...overrides,
    };
  }

  describe('when Redis finished a job the ledger still shows as processing', () => {
    it('completes the row with a repair transition whose note names the evidence', () => {
      const row = processingRow({ errorMessage: 'from an earlier attempt' });

      const transition = reconcileRow(row, redisState(), streamId(900), 'events trimmed');

      expect(row).toMatchObject({
        status: 'completed',
        attemptCount: 1,
        errorMessage: null,
        finishedAt: new Date(T0 + 60),
        startedAt: new Date(T0 + 10),
        lastEventId: streamId(900),
      });
      expect(transition).toEqual<TransitionRecord>({
        jobId: 7,
        fromStatus: 'processing',
        toStatus: 'completed',
        attempt: 1,
        errorMessage: null,
        worker: 'worker-a',
        occurredAt: new Date(T0 + 60),
        source: 'repair',
        eventId: streamId(900),
        note: 'repaired from Redis (events trimmed): job completed, 1 start(s)',
      });
    });

    it('fails the row with the reason Redis holds', () => {
      const row = processingRow();

      const transition = reconcileRow(
        row,
        redisState({ status: 'failed', failedReason: 'out of memory' }),
        streamId(900),
        'epoch changed',
      );

      expect(row).toMatchObject({ status: 'failed', errorMessage: 'out of memory' });
      expect(transition).toMatchObject({ toStatus: 'failed', errorMessage: 'out of memory' });
    });
  });

  describe('when Redis counts fewer starts than the ledger', () => {
    it('never lowers the attempt count', () => {
      const row = processingRow({ attemptCount: 3 });

      const transition = reconcileRow(row, redisState({ attemptsStarted: 1 }), streamId(900), 'x');

      expect(row.attemptCount).toBe(3);
      expect(transition?.attempt).toBe(3);
    });
  });

  describe('when Redis counts more starts than the ledger', () => {
    it('raises the attempt count even though the status already matches', () => {
      const row = processingRow({ attemptCount: 1 });

      const transition = reconcileRow(
        row,
        redisState({ status: 'processing', attemptsStarted: 2, finishedOn: null }),
        streamId(900),
        'x',
      );

      expect(row.attemptCount).toBe(2);
      expect(transition).toMatchObject({
        fromStatus: 'processing',
        toStatus: 'processing',
        attempt: 2,
      });
    });
  });

  describe('when comparing the snapshot with the last applied event', () => {
    it('adopts the snapshot stream id when it is newer', () => {
      const row = processingRow({ lastEventId: streamId(100) });

      reconcileRow(row, redisState(), streamId(100, 1), 'x');

      expect(row.lastEventId).toBe(streamId(100, 1));
    });

    it('keeps the last event id when the snapshot is older', () => {
      const row = processingRow({ lastEventId: streamId(100) });

      reconcileRow(row, redisState(), streamId(50), 'x');

      expect(row.lastEventId).toBe(streamId(100));
    });

    it('adopts the snapshot stream id when the row has seen no event', () => {
      const row = processingRow({ lastEventId: null });

      reconcileRow(row, redisState(), streamId(50), 'x');

      expect(row.lastEventId).toBe(streamId(50));
    });
  });

  describe('when the row already matches Redis', () => {
    it('returns no transition and changes neither status nor attempt count', () => {
      const row = processingRow({ attemptCount: 2, lastEventId: streamId(100) });

      const transition = reconcileRow(
        row,
        redisState({ status: 'processing', attemptsStarted: 2, finishedOn: null }),
        streamId(200),
        'x',
      );

      expect(transition).toBeUndefined();
      expect(row).toMatchObject({
        status: 'processing',
        attemptCount: 2,
        worker: 'worker-a',
        startedAt: new Date(T0 - 400),
        lastEventId: streamId(200),
      });
    });
  });
});

describe('compareStreamIds', () => {
  it('orders ids by millisecond first', () => {
    expect(compareStreamIds('1700000000001-0', '1700000000000-99')).toBeGreaterThan(0);
    expect(compareStreamIds('1700000000000-99', '1700000000001-0')).toBeLessThan(0);
  });

  it('orders ids of the same millisecond by sequence, numerically rather than as text', () => {
    expect(compareStreamIds('1700000000000-10', '1700000000000-9')).toBeGreaterThan(0);
    expect(compareStreamIds('1700000000000-9', '1700000000000-10')).toBeLessThan(0);
  });

  it('orders milliseconds numerically when their lengths differ', () => {
    expect(compareStreamIds('999-0', '1000-0')).toBeLessThan(0);
  });

  it('treats equal ids, and an id without a sequence as sequence 0, as equal', () => {
    expect(compareStreamIds('1700000000000-4', '1700000000000-4')).toBe(0);
    expect(compareStreamIds('1700000000000', '1700000000000-0')).toBe(0);
  });
});

describe('streamIdTime', () => {
  it('reads the Redis time from the millisecond part of the id', () => {
    expect(streamIdTime('1700000000123-7')).toEqual(new Date(1_700_000_000_123));
  });
});

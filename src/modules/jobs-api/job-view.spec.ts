import { JobEntity, JobTransitionEntity } from '../../entities';
import { toJobHistoryView, toJobView, toTransitionView } from './job-view';

function jobRow(overrides: Partial<JobEntity> = {}): JobEntity {
  return Object.assign(new JobEntity(), {
    id: 42,
    jobType: 'email_dispatch',
    payload: '{"to":"ada@example.com","tags":["welcome"]}',
    status: 'pending',
    attemptCount: 0,
    errorMessage: null,
    createdAt: new Date('2026-12-03T10:00:00.123Z'),
    updatedAt: new Date('2026-12-03T10:00:00.456Z'),
    priority: 5,
    maxAttempts: 3,
    backoffStrategy: 'exponential',
    backoffDelayMs: 200,
    backoffJitter: 0,
    runAt: new Date('2026-12-03T10:00:00.123Z'),
    dispatchedAt: new Date('2026-12-03T10:00:00.200Z'),
    startedAt: null,
    finishedAt: null,
    worker: null,
    lastEventId: null,
    ...overrides,
  });
}

function transitionRow(overrides: Partial<JobTransitionEntity> = {}): JobTransitionEntity {
  return Object.assign(new JobTransitionEntity(), {
    id: 7,
    jobId: 42,
    fromStatus: null,
    toStatus: 'pending',
    attempt: 0,
    errorMessage: null,
    worker: null,
    occurredAt: new Date('2026-12-03T10:00:00.123Z'),
    recordedAt: new Date('2026-12-03T10:00:00.130Z'),
    source: 'enqueue',
    eventId: null,
    note: null,
    ...overrides,
  });
}

describe('toJobView', () => {
  it('parses the payload and writes every date as an ISO string', () => {
    expect(toJobView(jobRow())).toEqual({
      id: 42,
      jobType: 'email_dispatch',
      payload: { to: 'ada@example.com', tags: ['welcome'] },
      status: 'pending',
      priority: 5,
      attemptCount: 0,
      maxAttempts: 3,
      errorMessage: null,
      createdAt: '2026-12-03T10:00:00.123Z',
      updatedAt: '2026-12-03T10:00:00.456Z',
      runAt: '2026-12-03T10:00:00.123Z',
      startedAt: null,
      finishedAt: null,
      worker: null,
    });
  });

  it('keeps a null payload and other JSON scalars as they were accepted', () => {
    expect(toJobView(jobRow({ payload: 'null' })).payload).toBeNull();
    expect(toJobView(jobRow({ payload: '"plain text"' })).payload).toBe('plain text');
    expect(toJobView(jobRow({ payload: '0' })).payload).toBe(0);
  });

  it('shows a finished job with its worker, times and error', () => {
    const view = toJobView(
      jobRow({
        status: 'failed',
        attemptCount: 3,
        errorMessage: 'SMTP refused the recipient',
        startedAt: new Date('2026-12-03T10:00:01.000Z'),
        finishedAt: new Date('2026-12-03T10:00:02.500Z'),
        worker: 'host-a:123',
      }),
    );

    expect(view).toMatchObject({
      status: 'failed',
      attemptCount: 3,
      errorMessage: 'SMTP refused the recipient',
      startedAt: '2026-12-03T10:00:01.000Z',
      finishedAt: '2026-12-03T10:00:02.500Z',
      worker: 'host-a:123',
    });
  });

  it('leaves out the columns that only the ledger and the dispatcher use', () => {
    const view = toJobView(jobRow());

    expect(view).not.toHaveProperty('lastEventId');
    expect(view).not.toHaveProperty('dispatchedAt');
    expect(view).not.toHaveProperty('backoffStrategy');
  });
});

describe('toTransitionView', () => {
  it('shows the creation of a job as a transition from null to pending', () => {
    expect(toTransitionView(transitionRow())).toEqual({
      id: 7,
      fromStatus: null,
      toStatus: 'pending',
      attempt: 0,
      errorMessage: null,
      worker: null,
      occurredAt: '2026-12-03T10:00:00.123Z',
      source: 'enqueue',
      note: null,
    });
  });

  it('keeps the note and error of a repaired failure', () => {
    const view = toTransitionView(
      transitionRow({
        fromStatus: 'processing',
        toStatus: 'failed',
        attempt: 1,
        errorMessage: 'worker stalled',
        source: 'repair',
        note: 'missing from Redis after its lock expired',
      }),
    );

    expect(view).toMatchObject({
      fromStatus: 'processing',
      toStatus: 'failed',
      source: 'repair',
      note: 'missing from Redis after its lock expired',
    });
  });
});

describe('toJobHistoryView', () => {
  it('keeps the transitions in the order it was given them', () => {
    const history = toJobHistoryView(42, [
      transitionRow({ id: 7 }),
      transitionRow({ id: 9, fromStatus: 'pending', toStatus: 'processing', attempt: 1 }),
    ]);

    expect(history.jobId).toBe(42);
    expect(history.transitions.map((transition) => transition.id)).toEqual([7, 9]);
  });
});

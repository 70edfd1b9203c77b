import { EventStreamReader, StreamPosition } from '../src/modules/ledger/event-stream.reader';
import { JobFactsReader } from '../src/modules/ledger/job-facts.reader';
import { ATTEMPT_ERRORS_FIELD } from '../src/modules/queue/queue.constants';
import { createTestEnvironment, TestEnvironment } from './support/test-context';

describe('reading the facts of many jobs in one script call', () => {
  let env: TestEnvironment;
  let reader: JobFactsReader;

  beforeAll(async () => {
    env = await createTestEnvironment('facts');
    reader = new JobFactsReader(env.redis);
  });

  afterAll(async () => {
    await env?.cleanup();
  });

  const key = (id: number) => `${env.prefix}:diag_noop:job-${id}`;

  it('answers per job in the order asked, with absent fields and absent jobs left undefined', async () => {
    await env.redis.hset(key(1), { name: 'diag_noop', pb: 'host:1', timestamp: '1700000000123' });
    await env.redis.hset(key(2), {
      name: 'diag_noop',
      pb: 'host:2',
      failedReason: 'boom 2',
      timestamp: '1700000000456',
      [ATTEMPT_ERRORS_FIELD]: JSON.stringify({ 1: 'boom 1', 2: 'boom 2' }),
    });

    const facts = await reader.read([
      { key: key(2), withAttemptErrors: true },
      { key: key(3), withAttemptErrors: true },
      { key: key(1), withAttemptErrors: false },
      { key: key(2), withAttemptErrors: false },
    ]);

    expect(facts).toEqual([
      {
        processedBy: 'host:2',
        failedReason: 'boom 2',
        addedAt: new Date(1700000000456),
        attemptErrors: { 1: 'boom 1', 2: 'boom 2' },
      },
      {
        processedBy: undefined,
        failedReason: undefined,
        addedAt: undefined,
        attemptErrors: undefined,
      },
      {
        processedBy: 'host:1',
        failedReason: undefined,
        addedAt: new Date(1700000000123),
        attemptErrors: undefined,
      },
      {
        processedBy: 'host:2',
        failedReason: 'boom 2',
        addedAt: new Date(1700000000456),
        attemptErrors: undefined,
      },
    ]);
  });

  it('reads more jobs than one call takes', async () => {
    const ids = Array.from({ length: 2500 }, (_, i) => 100 + i);
    const pipeline = env.redis.pipeline();
    ids.forEach((id) => pipeline.hset(key(id), { name: 'diag_noop', pb: `host:${id}` }));
    await pipeline.exec();

    const facts = await reader.read(ids.map((id) => ({ key: key(id), withAttemptErrors: false })));

    expect(facts.map((fact) => fact.processedBy)).toEqual(ids.map((id) => `host:${id}`));
  });

  it('treats an unreadable attempt-error record as absent', async () => {
    await env.redis.hset(key(9), { name: 'diag_noop', [ATTEMPT_ERRORS_FIELD]: '{not json' });

    const [facts] = await reader.read([{ key: key(9), withAttemptErrors: true }]);

    expect(facts.attemptErrors).toBeUndefined();
  });
});

describe('reading a queue stream with the ledger read script', () => {
  let env: TestEnvironment;
  let reader: EventStreamReader;

  beforeAll(async () => {
    env = await createTestEnvironment('events');
    reader = new EventStreamReader(env.redis, env.redis);
  });

  afterAll(async () => {
    await env?.cleanup();
  });

  const position = (cursor: string): StreamPosition => ({
    queue: 'diag_noop',
    key: `${env.prefix}:diag_noop:events`,
    markerKey: `${env.prefix}:diag_noop:ledger-epoch`,
    cursor,
    entriesRead: 0,
    epoch: 'e1',
  });

  it('keeps only the events that can change a row, with the one field each needs', async () => {
    const key = position('0-0').key;
    const add = (...fields: string[]) => env.redis.xadd(key, '*', ...fields);
    await add('event', 'added', 'jobId', 'job-1', 'name', 'diag_noop');
    await add('event', 'waiting', 'jobId', 'job-1');
    const active = await add('event', 'active', 'jobId', 'job-1', 'prev', 'waiting');
    await add('event', 'waiting', 'jobId', 'job-1', 'prev', 'active');
    await add('event', 'stalled', 'jobId', 'job-1');
    await add('event', 'delayed', 'jobId', 'job-1', 'delay', '1764756000123');
    await add('event', 'progress', 'jobId', 'job-1', 'data', '50');
    await add('event', 'completed', 'jobId', 'job-1', 'returnvalue', 'x'.repeat(10_000));
    await add('event', 'failed', 'jobId', 'job-2', 'failedReason', 'it broke', 'prev', 'active');
    const last = await add('event', 'drained');

    await env.redis.set(position('0-0').markerKey, 'e1');
    const missing = { ...position('0-0'), key: `${env.prefix}:none:events` };
    missing.markerKey = `${env.prefix}:none:ledger-epoch`;

    const [read, none] = await reader.read([position('0-0'), missing], 100);

    expect(read.marker).toBe('e1');
    expect(read.stream).toEqual({
      exists: true,
      length: 10,
      entriesAdded: 10,
      lastGeneratedId: last,
    });
    expect(none).toMatchObject({
      marker: null,
      stream: { exists: false, length: 0, entriesAdded: 0 },
      entriesRead: 0,
      events: [],
    });
    expect(read.entriesRead).toBe(10);
    expect(read.lastEntryId).toBe(last);
    expect(read.events.map((event) => [event.event, event.jobId, event.fields])).toEqual([
      ['active', 'job-1', { event: 'active', jobId: 'job-1' }],
      ['waiting', 'job-1', { event: 'waiting', jobId: 'job-1', prev: 'active' }],
      ['stalled', 'job-1', { event: 'stalled', jobId: 'job-1' }],
      ['delayed', 'job-1', { event: 'delayed', jobId: 'job-1', delay: '1764756000123' }],
      ['completed', 'job-1', { event: 'completed', jobId: 'job-1' }],
      ['failed', 'job-2', { event: 'failed', jobId: 'job-2', failedReason: 'it broke' }],
    ]);
    expect(read.events[0].id).toBe(active);

    const [after] = await reader.read([position(active ?? '0-0')], 2);
    expect(after.entriesRead).toBe(2);
    expect(after.events.map((event) => event.event)).toEqual(['waiting', 'stalled']);

    const [atEnd] = await reader.read([position(last ?? '0-0')], 100);
    expect(atEnd).toMatchObject({ entriesRead: 0, lastEntryId: undefined, events: [] });
  });
});

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

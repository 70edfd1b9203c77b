import { closestName, EnqueueRequest, validateEnqueueRequest } from './enqueue-request';
import { JobTypeDefinition } from './job-type.interface';
import { MAX_ATTEMPTS, MAX_BACKOFF_DELAY_MS, MAX_DELAY_MS, MAX_PRIORITY } from './queue.constants';
import { JobValidationError } from './queue.errors';

const NOW = Date.parse('2026-12-03T10:00:00.000Z');

const DEFINITIONS: JobTypeDefinition[] = [
  { name: 'email_dispatch', attempts: 3, backoff: { strategy: 'exponential', delayMs: 200 } },
  {
    name: 'report_generate',
    attempts: 2,
    backoff: { strategy: 'fixed', delayMs: 500, jitter: 0.2 },
  },
  { name: 'data_migration' },
  { name: 'event_forward', prioritized: false },
];

const CATALOGUE: ReadonlyMap<string, JobTypeDefinition> = new Map(
  DEFINITIONS.map((definition) => [definition.name, definition]),
);

const LIMITS = { payloadLimitBytes: 1024 };

function request(overrides: Partial<EnqueueRequest> = {}): EnqueueRequest {
  return { jobType: 'email_dispatch', payload: { to: 'ada@example.com' }, ...overrides };
}

/** Any value a caller could send in JSON or JavaScript, including ones the types forbid. */
function untyped<T>(value: unknown): T {
  return value as T;
}

function validate(
  overrides: Partial<EnqueueRequest>,
  path = '',
): ReturnType<typeof validateEnqueueRequest> {
  return validateEnqueueRequest(request(overrides), CATALOGUE, LIMITS, path, NOW);
}

function rejectionOf(run: () => unknown): JobValidationError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(JobValidationError);

    return error as JobValidationError;
  }

  throw new Error('expected a JobValidationError, but the request was accepted');
}

function expectRejected(
  run: () => unknown,
  field: string,
  rule: string | RegExp,
): JobValidationError {
  const error = rejectionOf(run);

  expect(error.field).toBe(field);
  expect(error.rule).toMatch(rule);
  expect(error.message).toContain(field);

  return error;
}

describe('validateEnqueueRequest', () => {
  describe('when the request sets only the job type and payload', () => {
    it('takes attempts and backoff from the job type, with no priority, jitter or delay', () => {
      expect(validate({})).toEqual({
        jobType: 'email_dispatch',
        payloadJson: '{"to":"ada@example.com"}',
        priority: 0,
        idempotencyKey: null,
        maxAttempts: 3,
        backoff: { strategy: 'exponential', delayMs: 200, jitter: 0 },
        delayMs: 0,
      });
    });

    it('runs a job of a type without defaults once, with no backoff', () => {
      expect(validate({ jobType: 'data_migration' })).toMatchObject({
        maxAttempts: 1,
        backoff: null,
      });
    });

    it('keeps the jitter a job type declares', () => {
      expect(validate({ jobType: 'report_generate' }).backoff).toEqual({
        strategy: 'fixed',
        delayMs: 500,
        jitter: 0.2,
      });
    });
  });

  describe('when the request overrides the job type', () => {
    it('uses its own priority, attempts, backoff and delay', () => {
      const job = validate({
        priority: 7,
        attempts: 5,
        backoff: { strategy: 'fixed', delayMs: 1_000, jitter: 0.5 },
        delayMs: 1_500,
      });

      expect(job).toMatchObject({
        priority: 7,
        maxAttempts: 5,
        backoff: { strategy: 'fixed', delayMs: 1_000, jitter: 0.5 },
        delayMs: 1_500,
      });
    });

    it('gives a job of a type without defaults the backoff the request asks for', () => {
      expect(
        validate({ jobType: 'data_migration', backoff: { strategy: 'exponential', delayMs: 50 } })
          .backoff,
      ).toEqual({ strategy: 'exponential', delayMs: 50, jitter: 0 });
    });
  });

  describe('when the job type is not declared', () => {
    it('lists the declared types and suggests a near miss', () => {
      const error = expectRejected(
        () => validate({ jobType: 'email_dispach' }),
        'jobType',
        'expected one of the declared job types (email_dispatch, report_generate, data_migration, event_forward); did you mean "email_dispatch"?',
      );

      expect(error.message).toContain('got "email_dispach"');
    });

    it('suggests the declared name for a wrongly capitalised one', () => {
      expectRejected(
        () => validate({ jobType: 'Email_Dispatch' }),
        'jobType',
        /did you mean "email_dispatch"\?$/,
      );
    });

    it('gives no hint when no declared name is close', () => {
      const error = expectRejected(
        () => validate({ jobType: 'send_sms' }),
        'jobType',
        'expected one of the declared job types (email_dispatch, report_generate, data_migration, event_forward)',
      );

      expect(error.message).not.toContain('did you mean');
    });

    it('quotes at most 100 characters of a very long name', () => {
      const error = rejectionOf(() => validate({ jobType: 'x'.repeat(500) }));

      expect(error.message).toContain(`got "${'x'.repeat(100)}"`);
      expect(error.message).not.toContain('x'.repeat(101));
    });
  });

  describe('when the job type is not a string', () => {
    it.each([
      [42, '42'],
      [undefined, 'undefined'],
      [null, 'null'],
      [{ name: 'email_dispatch' }, 'object'],
    ])('rejects %p and says what it got', (jobType, got) => {
      const error = expectRejected(
        () => validate({ jobType: untyped<string>(jobType) }),
        'jobType',
        'expected a string naming a declared job type',
      );

      expect(error.message).toBe(
        `jobType: expected a string naming a declared job type, got ${got}`,
      );
    });
  });

  describe('when the payload cannot be stored as JSON', () => {
    it('rejects a BigInt and gives the serialiser’s reason', () => {
      expectRejected(
        () => validate({ payload: { amount: BigInt(10) } }),
        'payload',
        /^expected a JSON-serialisable value \(.*BigInt.*\)$/,
      );
    });

    it('rejects a circular object with the first line of the reason only', () => {
      const payload: Record<string, unknown> = { name: 'loop' };
      payload.self = payload;

      const error = expectRejected(() => validate({ payload }), 'payload', /circular/);

      expect(error.rule).not.toContain('\n');
    });

    it.each([
      ['undefined', undefined],
      ['function', () => 'not data'],
      ['symbol', Symbol('not data')],
    ])('rejects a payload that is %s, which JSON cannot represent', (got, payload) => {
      const error = expectRejected(
        () => validate({ payload }),
        'payload',
        'expected a JSON-serialisable value',
      );

      expect(error.message).toContain(`got ${got}`);
    });

    it('accepts null and plain values', () => {
      expect(validate({ payload: null }).payloadJson).toBe('null');
      expect(validate({ payload: 'text' }).payloadJson).toBe('"text"');
      expect(validate({ payload: 0 }).payloadJson).toBe('0');
    });
  });

  describe('when the payload is larger than the limit', () => {
    // "é" takes two bytes in UTF-8: the JSON string "éééé" is 6 characters but 10 bytes.
    const limits = { payloadLimitBytes: 10 };

    it('accepts a payload of exactly the limit, counted in UTF-8 bytes', () => {
      expect(
        validateEnqueueRequest(request({ payload: 'éééé' }), CATALOGUE, limits, '', NOW)
          .payloadJson,
      ).toBe('"éééé"');
    });

    it('rejects one byte over and names both sizes in bytes', () => {
      const error = expectRejected(
        () => validateEnqueueRequest(request({ payload: 'ééééa' }), CATALOGUE, limits, '', NOW),
        'payload',
        'expected at most 10 bytes of JSON',
      );

      expect(error.message).toBe('payload: expected at most 10 bytes of JSON, got 11 bytes');
    });
  });

  describe('when the priority is out of range', () => {
    it.each([
      [-1, '-1'],
      [1.5, '1.5'],
      ['high', '"high"'],
      [NaN, 'NaN'],
      [MAX_PRIORITY + 1, String(MAX_PRIORITY + 1)],
    ])('rejects %p', (priority, got) => {
      const error = expectRejected(
        () => validate({ priority: untyped<number>(priority) }),
        'priority',
        `expected an integer from 0 to ${MAX_PRIORITY}`,
      );

      expect(error.message).toContain(`got ${got}`);
    });

    it.each([0, MAX_PRIORITY])('accepts %p, the ends of the range', (priority) => {
      expect(validate({ priority }).priority).toBe(priority);
    });
  });

  describe('when the job type runs in arrival order', () => {
    const FIFO_RULE =
      'expected 0 for job type "event_forward", which runs in arrival order (prioritized: false)';

    it.each([undefined, null, 0])('accepts a priority of %p as 0', (priority) => {
      expect(validate({ jobType: 'event_forward', priority: untyped(priority) }).priority).toBe(0);
    });

    it.each([1, 3, MAX_PRIORITY])(
      'rejects priority %p, naming the type and the rule',
      (priority) => {
        const error = expectRejected(
          () => validate({ jobType: 'event_forward', priority }),
          'priority',
          FIFO_RULE,
        );

        expect(error.message).toBe(`priority: ${FIFO_RULE}, got ${priority}`);
      },
    );

    it('names the field under the path prefix of a batch', () => {
      expectRejected(
        () => validate({ jobType: 'event_forward', priority: 3 }, 'jobs[3].'),
        'jobs[3].priority',
        FIFO_RULE,
      );
    });

    it('reports a priority outside the range by the range rule first', () => {
      expectRejected(
        () => validate({ jobType: 'event_forward', priority: -1 }),
        'priority',
        `expected an integer from 0 to ${MAX_PRIORITY}`,
      );
    });

    it('takes any priority for a type that keeps the default', () => {
      expect(validate({ jobType: 'data_migration', priority: 3 }).priority).toBe(3);
    });
  });

  describe('when the attempts are out of range', () => {
    it.each([0, MAX_ATTEMPTS + 1, 2.5, '3'])('rejects %p', (attempts) => {
      expectRejected(
        () => validate({ attempts: untyped<number>(attempts) }),
        'attempts',
        `expected an integer from 1 to ${MAX_ATTEMPTS}`,
      );
    });

    it.each([1, MAX_ATTEMPTS])('accepts %p, the ends of the range', (attempts) => {
      expect(validate({ attempts }).maxAttempts).toBe(attempts);
    });
  });

  describe('when the backoff breaks a rule', () => {
    it('rejects a backoff that is not an object', () => {
      expectRejected(
        () => validate({ backoff: untyped('fast') }),
        'backoff',
        'expected an object { strategy, delayMs, jitter? }',
      );
    });

    it('rejects an unknown strategy and lists the known ones', () => {
      const error = expectRejected(
        () => validate({ backoff: untyped({ strategy: 'linear', delayMs: 100 }) }),
        'backoff.strategy',
        'expected one of fixed, exponential',
      );

      expect(error.message).toContain('got "linear"');
    });

    it('rejects a backoff without a delay', () => {
      expectRejected(
        () => validate({ backoff: untyped({ strategy: 'fixed' }) }),
        'backoff.delayMs',
        'expected an integer number of milliseconds',
      );
    });

    it.each([-1, 1.5, MAX_BACKOFF_DELAY_MS + 1, '100'])('rejects a delay of %p', (delayMs) => {
      expectRejected(
        () => validate({ backoff: { strategy: 'fixed', delayMs: untyped<number>(delayMs) } }),
        'backoff.delayMs',
        `expected an integer from 0 to ${MAX_BACKOFF_DELAY_MS}`,
      );
    });

    it.each([0, MAX_BACKOFF_DELAY_MS])('accepts a delay of %p', (delayMs) => {
      expect(validate({ backoff: { strategy: 'fixed', delayMs } }).backoff?.delayMs).toBe(delayMs);
    });

    it.each([-0.1, 1.01, NaN, Infinity, '0.5'])('rejects a jitter of %p', (jitter) => {
      expectRejected(
        () =>
          validate({
            backoff: { strategy: 'exponential', delayMs: 100, jitter: untyped<number>(jitter) },
          }),
        'backoff.jitter',
        'expected a number from 0 to 1',
      );
    });

    it.each([0, 0.25, 1])('accepts a jitter of %p', (jitter) => {
      expect(
        validate({ backoff: { strategy: 'exponential', delayMs: 100, jitter } }).backoff?.jitter,
      ).toBe(jitter);
    });
  });

  describe('when a delay is given in milliseconds', () => {
    it.each([-1, 2.5, MAX_DELAY_MS + 1])('rejects %p', (delayMs) => {
      expectRejected(
        () => validate({ delayMs }),
        'delayMs',
        `expected an integer from 0 to ${MAX_DELAY_MS}`,
      );
    });

    it.each([0, MAX_DELAY_MS])('accepts %p, the ends of the range', (delayMs) => {
      expect(validate({ delayMs }).delayMs).toBe(delayMs);
    });
  });

  describe('when a run time is given', () => {
    it('turns a future time into the delay from now', () => {
      expect(validate({ runAt: new Date(NOW + 5_000) }).delayMs).toBe(5_000);
    });

    it('runs a job whose time has passed without delay', () => {
      expect(validate({ runAt: new Date(NOW - 60_000) }).delayMs).toBe(0);
    });

    it('rejects an invalid Date', () => {
      expectRejected(
        () => validate({ runAt: new Date('not a date') }),
        'runAt',
        'expected a valid Date',
      );
    });

    it('rejects a value that is not a Date', () => {
      const error = expectRejected(
        () => validate({ runAt: untyped<Date>('2026-12-03T10:00:05Z') }),
        'runAt',
        'expected a valid Date',
      );

      expect(error.message).toContain('got "2026-12-03T10:00:05Z"');
    });

    it('rejects a time further ahead than the longest delay', () => {
      expectRejected(
        () => validate({ runAt: new Date(NOW + MAX_DELAY_MS + 1) }),
        'runAt',
        `expected a time at most ${MAX_DELAY_MS} ms ahead`,
      );
    });

    it('rejects a request that also gives delayMs', () => {
      expectRejected(
        () => validate({ delayMs: 1_000, runAt: new Date(NOW + 5_000) }),
        'runAt',
        'expected either delayMs or runAt, not both',
      );
    });
  });

  describe('when the request is one of a batch', () => {
    it.each<[Partial<EnqueueRequest>, string]>([
      [{ jobType: 'nope' }, 'jobs[2].jobType'],
      [{ payload: undefined }, 'jobs[2].payload'],
      [{ priority: -1 }, 'jobs[2].priority'],
      [{ attempts: 0 }, 'jobs[2].attempts'],
      [{ backoff: untyped({ strategy: 'linear', delayMs: 1 }) }, 'jobs[2].backoff.strategy'],
      [{ backoff: { strategy: 'fixed', delayMs: 1, jitter: 2 } }, 'jobs[2].backoff.jitter'],
      [{ delayMs: -1 }, 'jobs[2].delayMs'],
      [{ runAt: new Date('') }, 'jobs[2].runAt'],
    ])('names the field under the path prefix (%p)', (overrides, field) => {
      const error = rejectionOf(() => validate(overrides, 'jobs[2].'));

      expect(error.field).toBe(field);
      expect(error.message.startsWith(`${field}: `)).toBe(true);
    });
  });
});

describe('closestName', () => {
  const names = ['email_dispatch', 'report_generate', 'data_export', 'data_backup'];

  it('returns the declared name one typo away', () => {
    expect(closestName('data_exprot', names)).toBe('data_export');
  });

  it('ignores the case of the input', () => {
    expect(closestName('REPORT_GENERATE', names)).toBe('report_generate');
  });

  it('allows more edits for a longer name', () => {
    // Three edits from a 15-character name: within a quarter of its length.
    expect(closestName('reprt_genrat', names)).toBe('report_generate');
  });

  it('returns nothing when every name is far away', () => {
    expect(closestName('send_sms', names)).toBeUndefined();
    expect(closestName('data', names)).toBeUndefined();
  });

  it('returns nothing when there are no names', () => {
    expect(closestName('email_dispatch', [])).toBeUndefined();
  });
});

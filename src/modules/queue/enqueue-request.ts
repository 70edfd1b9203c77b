import { BackoffStrategy } from '../../entities/job.entity';
import { BackoffOptions, isPrioritized, JobTypeDefinition } from './job-type.interface';
import { MAX_ATTEMPTS, MAX_BACKOFF_DELAY_MS, MAX_DELAY_MS, MAX_PRIORITY } from './queue.constants';
import { JobValidationError } from './queue.errors';

/** Per-job options a producer may set; every one falls back to the job type's default. */
export interface JobOptions {
  /**
   * 0 is the lowest, a larger number runs first; FIFO among equals. Must be 0 for a job type
   * declared with `prioritized: false`. @defaultValue 0
   */
  priority?: number;
  /** How many times the job is started at most. @defaultValue the job type's, else 1 */
  attempts?: number;
  /** Backoff between attempts. @defaultValue the job type's, else none */
  backoff?: BackoffOptions;
  /** Run no sooner than this many milliseconds from now. Exclusive with `runAt`. */
  delayMs?: number;
  /** Run no sooner than this time. Exclusive with `delayMs`. */
  runAt?: Date;
  /**
   * Up to 255 characters. The same key again returns the first job and enqueues nothing, also
   * long after that job finished.
   */
  idempotencyKey?: string;
}

export interface EnqueueRequest extends JobOptions {
  jobType: string;
  payload: unknown;
}

/** A request that passed every rule, with the defaults filled in. */
export interface ValidatedJob {
  jobType: string;
  payloadJson: string;
  priority: number;
  maxAttempts: number;
  backoff: Required<BackoffOptions> | null;
  delayMs: number;
  idempotencyKey: string | null;
}

export interface ValidationLimits {
  payloadLimitBytes: number;
}

const BACKOFF_STRATEGIES: readonly BackoffStrategy[] = ['fixed', 'exponential'];

/**
 * Checks one request against the catalogue and the limits. Throws a `JobValidationError` that
 * names the field (under `path`) and the rule; returns the normalised job otherwise.
 */
export function validateEnqueueRequest(
  request: EnqueueRequest,
  catalogue: ReadonlyMap<string, JobTypeDefinition>,
  limits: ValidationLimits,
  path = '',
  now = Date.now(),
): ValidatedJob {
  const field = (name: string): string => `${path}${name}`;
  const definition = requireJobType(request.jobType, catalogue, field('jobType'));

  return {
    jobType: definition.name,
    payloadJson: serialisePayload(request.payload, limits.payloadLimitBytes, field('payload')),
    priority: resolvePriority(request.priority, definition, field('priority')),
    maxAttempts:
      integerInRange(request.attempts, 1, MAX_ATTEMPTS, field('attempts')) ??
      definition.attempts ??
      1,
    backoff: normaliseBackoff(request.backoff ?? definition.backoff, field('backoff')),
    delayMs: resolveDelay(request, now, field),
    idempotencyKey: validateIdempotencyKey(request.idempotencyKey, field('idempotencyKey')),
  };
}

function requireJobType(
  jobType: unknown,
  catalogue: ReadonlyMap<string, JobTypeDefinition>,
  field: string,
): JobTypeDefinition {
  if (typeof jobType !== 'string') {
    throw new JobValidationError(
      field,
      'expected a string naming a declared job type',
      describe(jobType),
    );
  }

  const definition = catalogue.get(jobType);
  if (!definition) {
    const hint = closestName(jobType, [...catalogue.keys()]);
    const known = `expected one of the declared job types (${[...catalogue.keys()].join(', ')})`;
    throw new JobValidationError(
      field,
      hint ? `${known}; did you mean "${hint}"?` : known,
      JSON.stringify(jobType.slice(0, 100)),
    );
  }

  return definition;
}

function serialisePayload(payload: unknown, limitBytes: number, field: string): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(payload);
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : 'unknown error';
    throw new JobValidationError(field, `expected a JSON-serialisable value (${reason})`);
  }

  if (json === undefined) {
    throw new JobValidationError(field, 'expected a JSON-serialisable value', describe(payload));
  }

  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes > limitBytes) {
    throw new JobValidationError(
      field,
      `expected at most ${limitBytes} bytes of JSON`,
      `${bytes} bytes`,
    );
  }

  return json;
}

function resolvePriority(value: unknown, definition: JobTypeDefinition, field: string): number {
  const priority = integerInRange(value, 0, MAX_PRIORITY, field) ?? 0;
  if (priority !== 0 && !isPrioritized(definition)) {
    throw new JobValidationError(
      field,
      `expected 0 for job type "${definition.name}", which runs in arrival order (prioritized: false)`,
      describe(priority),
    );
  }

  return priority;
}

function integerInRange(
  value: unknown,
  min: number,
  max: number,
  field: string,
): number | undefined {
  if (value === undefined || value === null) {
    return undefined;
  }

  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new JobValidationError(
      field,
      `expected an integer from ${min} to ${max}`,
      describe(value),
    );
  }

  return value;
}

function numberInRange(
  value: unknown,
  min: number,
  max: number,
  field: string,
): number | undefined {
  if (value === undefined || value === null) {
    return undefined;
  }

  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new JobValidationError(field, `expected a number from ${min} to ${max}`, describe(value));
  }

  return value;
}

function normaliseBackoff(
  backoff: BackoffOptions | undefined,
  field: string,
): Required<BackoffOptions> | null {
  if (backoff === undefined || backoff === null) {
    return null;
  }

  if (typeof backoff !== 'object') {
    throw new JobValidationError(
      field,
      'expected an object { strategy, delayMs, jitter? }',
      describe(backoff),
    );
  }

  if (!BACKOFF_STRATEGIES.includes(backoff.strategy)) {
    throw new JobValidationError(
      `${field}.strategy`,
      `expected one of ${BACKOFF_STRATEGIES.join(', ')}`,
      describe(backoff.strategy),
    );
  }

  const delayMs = integerInRange(backoff.delayMs, 0, MAX_BACKOFF_DELAY_MS, `${field}.delayMs`);
  if (delayMs === undefined) {
    throw new JobValidationError(`${field}.delayMs`, 'expected an integer number of milliseconds');
  }

  const jitter = numberInRange(backoff.jitter, 0, 1, `${field}.jitter`) ?? 0;

  return { strategy: backoff.strategy, delayMs, jitter };
}

function resolveDelay(
  request: EnqueueRequest,
  now: number,
  field: (name: string) => string,
): number {
  if (request.delayMs !== undefined && request.runAt !== undefined) {
    throw new JobValidationError(field('runAt'), 'expected either delayMs or runAt, not both');
  }

  if (request.runAt !== undefined) {
    const runAt = request.runAt;
    if (!(runAt instanceof Date) || Number.isNaN(runAt.getTime())) {
      throw new JobValidationError(field('runAt'), 'expected a valid Date', describe(runAt));
    }

    const delay = Math.max(0, runAt.getTime() - now);
    if (delay > MAX_DELAY_MS) {
      throw new JobValidationError(
        field('runAt'),
        `expected a time at most ${MAX_DELAY_MS} ms ahead`,
      );
    }

    return delay;
  }

  return integerInRange(request.delayMs, 0, MAX_DELAY_MS, field('delayMs')) ?? 0;
}

function validateIdempotencyKey(key: unknown, field: string): string | null {
  if (key === undefined || key === null) {
    return null;
  }

  if (typeof key !== 'string' || key.length < 1 || key.length > 255) {
    throw new JobValidationError(field, 'expected a string of 1 to 255 characters', describe(key));
  }

  return key;
}

function describe(value: unknown): string {
  if (value === undefined) {
    return 'undefined';
  }

  if (typeof value === 'string') {
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  }

  if (typeof value === 'number' || typeof value === 'boolean' || value === null) {
    return String(value);
  }

  return typeof value;
}

/** The declared name closest to a misspelt one, if it is close enough to be the likely intent. */
export function closestName(input: string, candidates: string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;

  for (const candidate of candidates) {
    const distance = editDistance(input.toLowerCase(), candidate);
    if (!best || distance < best.distance) {
      best = { name: candidate, distance };
    }
  }

  return best && best.distance <= Math.max(2, Math.floor(best.name.length / 4))
    ? best.name
    : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);

  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j] + 1, current[j - 1] + 1, substitution));
    }
    previous = current;
  }

  return previous[b.length];
}

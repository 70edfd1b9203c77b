import { Type } from 'class-transformer';
import {
  IsInt,
  IsISO8601,
  IsNumber,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  ValidateBy,
  ValidateNested,
} from 'class-validator';

import { BackoffStrategy } from '../../../entities/job.entity';
import { EnqueueRequest } from '../../queue';

/*
 * The DTOs check shapes and types only. Ranges, the job type catalogue and the payload size are
 * QueueService's rules, so that the API and in-process producers can never disagree on them.
 */

/** Accepts any value that is present; `null` is a JSON value like any other. */
function IsPresent(): PropertyDecorator {
  return ValidateBy({
    name: 'isPresent',
    validator: {
      validate: (value: unknown) => value !== undefined,
      defaultMessage: () => '$property is required (any JSON value, null included)',
    },
  });
}

/** How long to wait before a failed attempt is retried. */
export class BackoffDto {
  /** `fixed` waits `delayMs` every time; `exponential` doubles it with each attempt. */
  @IsString()
  strategy!: BackoffStrategy;

  /** The base delay in milliseconds. */
  @IsInt()
  delayMs!: number;

  /** From 0 to 1: the share of each delay that is randomised. @defaultValue 0 */
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  jitter?: number;
}

/**
 * One job to enqueue. Every option may be left out or `null`, and then falls back to the job
 * type's default.
 */
export class EnqueueJobDto {
  /** A declared job type, such as `email_dispatch`. */
  @IsString()
  jobType!: string;

  /** Any JSON value, at most `PAYLOAD_LIMIT_BYTES` (256 KiB by default) once serialised. */
  @IsPresent()
  payload!: unknown;

  /** 0 is the lowest, a larger number runs first; FIFO among equals. @defaultValue 0 */
  @IsOptional()
  @IsInt()
  priority?: number | null;

  /** How many times the job is started at most. @defaultValue the job type's, else 1 */
  @IsOptional()
  @IsInt()
  attempts?: number | null;

  /** @defaultValue the job type's, else no retry delay */
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => BackoffDto)
  backoff?: BackoffDto | null;

  /** Run no sooner than this many milliseconds from now. Exclusive with `runAt`. */
  @IsOptional()
  @IsInt()
  delayMs?: number | null;

  /**
   * Run no sooner than this ISO-8601 time, such as `2027-01-31T09:00:00Z`. Exclusive with
   * `delayMs`. The offset is required: without one, the time would be read in the server's zone.
   */
  @IsOptional()
  @IsISO8601({ strict: true, strictSeparator: true })
  @Matches(/T.*(Z|[+-]\d{2}(:?\d{2})?)$/i, {
    message: '$property must be a date-time with Z or a UTC offset, such as 2027-01-31T09:00:00Z',
  })
  runAt?: string | null;

  /** The same key again returns the first job and enqueues nothing (1 to 255 characters). */
  @IsOptional()
  @IsString()
  idempotencyKey?: string | null;
}

/** The request QueueService takes; `null` options become "use the default". */
export function toEnqueueRequest(dto: EnqueueJobDto): EnqueueRequest {
  return {
    jobType: dto.jobType,
    payload: dto.payload,
    priority: dto.priority ?? undefined,
    attempts: dto.attempts ?? undefined,
    backoff: dto.backoff ?? undefined,
    delayMs: dto.delayMs ?? undefined,
    runAt: dto.runAt == null ? undefined : new Date(dto.runAt),
    idempotencyKey: dto.idempotencyKey ?? undefined,
  };
}

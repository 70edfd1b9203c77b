import { Job } from 'bullmq';
import Redis from 'ioredis';

import { ATTEMPT_ERRORS_FIELD } from '../queue/queue.constants';
import { createRedisClient } from '../queue/redis-connection';

/** Adds one attempt's error to the job's hash; a job no longer in Redis is left alone. */
const RECORD_ATTEMPT_ERROR = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local errors = raw and cjson.decode(raw) or {}
errors[ARGV[2]] = ARGV[3]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(errors))
return 1`;

/**
 * BullMQ keeps only the latest failure's reason in the job's hash. A ledger that reads it after
 * the job failed again would give the earlier attempt the later error, so the worker keeps each
 * attempt's error under its attempt number, before BullMQ records the failure.
 */
export class AttemptErrorLog {
  private client: Redis | undefined;

  constructor(private readonly redisUrl: string) {}

  /** @param startsBefore - starts counted before BullMQ's own, for a job sent again */
  async record(job: Job, startsBefore: number, message: string): Promise<void> {
    this.client ??= createRedisClient(this.redisUrl);
    await this.client.eval(
      RECORD_ATTEMPT_ERROR,
      1,
      `${job.queueQualifiedName}:${job.id}`,
      ATTEMPT_ERRORS_FIELD,
      String(startsBefore + job.attemptsStarted),
      message,
    );
  }

  close(): void {
    this.client?.disconnect();
  }
}

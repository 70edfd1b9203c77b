import Redis from 'ioredis';

import { ATTEMPT_ERRORS_FIELD } from '../queue/queue.constants';
import { JobFacts } from './transition-rules';

/**
 * Reads the facts of many jobs in one call. A pipeline of one HMGET per job cost the projector
 * more client CPU (a command object, its encoding and its reply each) than the rest of its Redis
 * work; a script answers for a whole batch with one flat reply.
 *
 * KEYS are job hashes; ARGV[i] is "1" when the attempts' errors of KEYS[i] are wanted too.
 * The reply holds four values per key (absent fields as nil).
 */
const READ_FACTS_SCRIPT = `
local reply = {}
for index = 1, #KEYS do
  local fields = redis.call('HMGET', KEYS[index], 'pb', 'failedReason', 'timestamp')
  reply[#reply + 1] = fields[1]
  reply[#reply + 1] = fields[2]
  reply[#reply + 1] = fields[3]
  if ARGV[index] == '1' then
    reply[#reply + 1] = redis.call('HGET', KEYS[index], '${ATTEMPT_ERRORS_FIELD}')
  else
    reply[#reply + 1] = false
  end
end
return reply
`;

const VALUES_PER_JOB = 4;

/** Jobs per script call: bounds the time Redis spends in one script. */
const JOBS_PER_CALL = 1000;

type ReadFacts = (numberOfKeys: number, ...keysThenFlags: string[]) => Promise<unknown[]>;

export interface FactsRequest {
  /** The key of the job's hash. */
  key: string;
  /** Whether the attempts' errors are wanted too (only for retried jobs: they can be large). */
  withAttemptErrors: boolean;
}

export class JobFactsReader {
  constructor(private readonly redis: Redis) {
    // ioredis sends EVALSHA and falls back to EVAL when Redis lost its script cache.
    redis.defineCommand('ledgerReadFacts', { lua: READ_FACTS_SCRIPT });
  }

  /** The facts of each requested job, in the order asked. */
  async read(requests: FactsRequest[]): Promise<JobFacts[]> {
    const facts: JobFacts[] = [];

    for (let start = 0; start < requests.length; start += JOBS_PER_CALL) {
      const chunk = requests.slice(start, start + JOBS_PER_CALL);
      const reply = await this.readChunk(chunk);
      for (let index = 0; index < chunk.length; index++) {
        facts.push(toFacts(reply, index * VALUES_PER_JOB));
      }
    }

    return facts;
  }

  private readChunk(chunk: FactsRequest[]): Promise<unknown[]> {
    const readFacts = (this.redis as unknown as { ledgerReadFacts: ReadFacts }).ledgerReadFacts;
    const keys = chunk.map((request) => request.key);
    const flags = chunk.map((request) => (request.withAttemptErrors ? '1' : '0'));

    return readFacts.call(this.redis, chunk.length, ...keys, ...flags);
  }
}

function toFacts(reply: unknown[], offset: number): JobFacts {
  const [processedBy, failedReason, timestamp, attemptErrors] = reply.slice(
    offset,
    offset + VALUES_PER_JOB,
  ) as Array<string | null | undefined>;

  return {
    processedBy: processedBy ?? undefined,
    failedReason: failedReason ?? undefined,
    addedAt: parseTimestamp(timestamp),
    attemptErrors: parseAttemptErrors(attemptErrors),
  };
}

function parseTimestamp(raw: string | null | undefined): Date | undefined {
  const millis = Number(raw);

  return raw && Number.isFinite(millis) && millis > 0 ? new Date(millis) : undefined;
}

/** The worker's record of each attempt's error; anything unreadable counts as absent. */
function parseAttemptErrors(raw: string | null | undefined): Record<string, string> | undefined {
  if (!raw) {
    return undefined;
  }

  try {
    const parsed: unknown = JSON.parse(raw);

    return parsed !== null && typeof parsed === 'object'
      ? (parsed as Record<string, string>)
      : undefined;
  } catch {
    return undefined;
  }
}

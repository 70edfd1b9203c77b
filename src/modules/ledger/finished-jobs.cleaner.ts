import Redis from 'ioredis';

/**
 * Removes jobs that finished in Redis once the ledger has recorded their end. Only jobs that
 * sit in the completed or failed set are touched, so a job that was sent again and is waiting
 * or running is never removed. Emits no queue event.
 */
const REMOVE_FINISHED_SCRIPT = `
local removed = 0
for index = 2, #ARGV do
  local jobId = ARGV[index]
  local finished = redis.call('ZREM', KEYS[1], jobId)
  if finished == 0 then
    finished = redis.call('ZREM', KEYS[2], jobId)
  end
  if finished > 0 then
    redis.call('DEL', ARGV[1] .. jobId, ARGV[1] .. jobId .. ':logs')
    removed = removed + 1
  end
end
return removed
`;

type RemoveFinished = (
  completedKey: string,
  failedKey: string,
  queueKeyPrefix: string,
  ...jobIds: string[]
) => Promise<number>;

export class FinishedJobsCleaner {
  constructor(private readonly redis: Redis) {
    // ioredis sends EVALSHA and falls back to EVAL when Redis lost its script cache.
    redis.defineCommand('ledgerRemoveFinished', { numberOfKeys: 2, lua: REMOVE_FINISHED_SCRIPT });
  }

  /** Removes the given finished jobs of one queue; returns how many were removed. */
  async remove(queueKeyPrefix: string, bullJobIds: string[]): Promise<number> {
    if (bullJobIds.length === 0) {
      return 0;
    }

    const removeFinished = (this.redis as unknown as { ledgerRemoveFinished: RemoveFinished })
      .ledgerRemoveFinished;

    return removeFinished.call(
      this.redis,
      `${queueKeyPrefix}completed`,
      `${queueKeyPrefix}failed`,
      queueKeyPrefix,
      ...bullJobIds,
    );
  }
}

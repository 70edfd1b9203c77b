import Redis, { RedisOptions } from 'ioredis';

/**
 * A Redis client for the ledger's own reads. `blocking` clients never give up on a command
 * while Redis is away, which blocking reads need; others fail fast so that a loop can retry.
 */
export function createRedisClient(url: string, blocking = false): Redis {
  const options: RedisOptions = blocking
    ? { maxRetriesPerRequest: null, enableReadyCheck: false }
    : { maxRetriesPerRequest: 1 };
  const client = new Redis(url, options);
  // Failures surface through the commands that fail; an unhandled 'error' would crash Node.
  client.on('error', () => undefined);

  return client;
}

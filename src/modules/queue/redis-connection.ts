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

/** Rejects when Redis has not answered within `ms`; ioredis may otherwise wait for a reconnect. */
export async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not answer within ${ms} ms`)), ms);
  });
  promise.catch(() => undefined);

  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

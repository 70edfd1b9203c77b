import { createConnection } from 'mysql2/promise';
import Redis from 'ioredis';

/** Fails fast, with a hint, when the services the integration tests need are not running. */
export default async function globalSetup(): Promise<void> {
  const redis = new Redis({
    host: '127.0.0.1',
    port: 6379,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch {
    throw new Error('Redis does not answer on 127.0.0.1:6379; start it (see README) and rerun');
  } finally {
    redis.disconnect();
  }

  try {
    const connection = await createConnection({ host: '127.0.0.1', port: 3306, user: 'root' });
    await connection.end();
  } catch {
    throw new Error('MariaDB/MySQL does not answer on 127.0.0.1:3306 as root; see README');
  }
}

import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';

import Redis from 'ioredis';
import { Connection, createConnection } from 'mysql2/promise';

import { freePort, PrivateMariaDb, PrivateRedis } from './support/private-servers';

/** A client that tries once and reports the refusal instead of reconnecting forever. */
function redisClient(url: string): Redis {
  return new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
}

/** The socket error a client meets on connecting; `connect()` itself only says "closed". */
async function redisConnectError(url: string): Promise<unknown> {
  const client = redisClient(url);
  let socketError: unknown;
  client.on('error', (error) => (socketError ??= error));
  try {
    await client.connect();

    return undefined;
  } catch {
    return socketError;
  } finally {
    client.disconnect();
  }
}

function mariaDbConnect(server: PrivateMariaDb): Promise<Connection> {
  return createConnection({ host: '127.0.0.1', port: server.port, user: 'root', password: '' });
}

describe('freePort', () => {
  it('returns a loopback port other than those of the shared Redis and MariaDB', async () => {
    const port = await freePort();

    expect(port).toBeGreaterThan(0);
    expect([3306, 6379]).not.toContain(port);
  });

  it('stays below the kernel range of ephemeral ports, where clients get their source ports', async () => {
    const range = await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8');
    const ephemeralStart = Number(range.trim().split(/\s+/)[0]);

    for (let draw = 0; draw < 20; draw++) {
      expect(await freePort()).toBeLessThan(ephemeralStart);
    }
  });
});

describe('PrivateRedis', () => {
  describe('when started without an append-only file', () => {
    let server: PrivateRedis;
    let client: Redis | undefined;

    beforeAll(async () => {
      server = await PrivateRedis.start();
    });

    afterEach(() => {
      client?.disconnect();
      client = undefined;
    });

    afterAll(async () => {
      await server.destroy();
    });

    it('answers on a private loopback port', async () => {
      client = redisClient(server.url);
      await client.connect();

      expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
      expect([3306, 6379]).not.toContain(server.port);
      expect(await client.ping()).toBe('PONG');
    });

    it('refuses connections once stopped', async () => {
      await server.stop();

      expect(server.running).toBe(false);
      expect(await redisConnectError(server.url)).toMatchObject({ code: 'ECONNREFUSED' });
    });

    it('comes back empty on the same port after a restart', async () => {
      const port = server.port;
      await server.restart();
      client = redisClient(server.url);
      await client.connect();
      await client.set('survivor', 'no');

      await server.restart();
      client.disconnect();
      client = redisClient(server.url);
      await client.connect();

      expect(server.port).toBe(port);
      expect(await client.dbsize()).toBe(0);
    });

    it('refuses connections after a kill and answers again after a restart', async () => {
      await server.kill();

      expect(await redisConnectError(server.url)).toMatchObject({ code: 'ECONNREFUSED' });

      await server.restart();
      client = redisClient(server.url);
      await client.connect();

      expect(await client.ping()).toBe('PONG');
    });
  });

  describe('when another process takes its port while it is stopped', () => {
    it("fails to restart with the server's own words", async () => {
      const server = await PrivateRedis.start();
      const squatter = createServer();
      try {
        await server.stop();
        await new Promise<void>((resolve) => squatter.listen(server.port, '127.0.0.1', resolve));

        await expect(server.restart()).rejects.toThrow(/exited .*Address already in use/s);
        expect(server.running).toBe(false);
      } finally {
        squatter.close();
        await server.destroy();
      }
    });
  });

  describe('when started with an append-only file', () => {
    it('keeps its keys across a stop and restart', async () => {
      const server = await PrivateRedis.start({ appendOnly: true });
      const client = redisClient(server.url);
      try {
        await client.connect();
        await client.set('survivor', 'yes');
        client.disconnect();
        await server.stop();
        await server.restart();
        await client.connect();

        expect(await client.get('survivor')).toBe('yes');
      } finally {
        client.disconnect();
        await server.destroy();
      }
    });
  });
});

describe('PrivateMariaDb', () => {
  let server: PrivateMariaDb;

  beforeAll(async () => {
    server = await PrivateMariaDb.start();
  });

  afterAll(async () => {
    await server.destroy();
  });

  it('lets root in over TCP without a password on a private loopback port', async () => {
    const connection = await mariaDbConnect(server);
    const [rows] = await connection.query('SELECT CURRENT_USER() AS user');
    await connection.end();

    expect(server.url).toBe(`mysql://root@127.0.0.1:${server.port}`);
    expect([3306, 6379]).not.toContain(server.port);
    expect(rows).toEqual([{ user: 'root@127.0.0.1' }]);
  });

  it('keeps a written table across a stop and a restart on the same port', async () => {
    const port = server.port;
    const writer = await mariaDbConnect(server);
    await writer.query('CREATE DATABASE survival');
    await writer.query('CREATE TABLE survival.rows_kept (id INT PRIMARY KEY) ENGINE=InnoDB');
    await writer.query('INSERT INTO survival.rows_kept (id) VALUES (1), (2)');
    await writer.end();

    await server.stop();
    await server.restart();
    const reader = await mariaDbConnect(server);
    const [rows] = await reader.query('SELECT id FROM survival.rows_kept ORDER BY id');
    await reader.end();

    expect(server.port).toBe(port);
    expect(rows).toEqual([{ id: 1 }, { id: 2 }]);
  });

  it('keeps committed rows across a kill, as after a crash', async () => {
    const writer = await mariaDbConnect(server);
    await writer.query('INSERT INTO survival.rows_kept (id) VALUES (3)');
    await writer.end();

    await server.kill();
    await server.restart();
    const reader = await mariaDbConnect(server);
    const [rows] = await reader.query('SELECT COUNT(*) AS count FROM survival.rows_kept');
    await reader.end();

    expect(rows).toEqual([{ count: 3 }]);
  });

  it('refuses connections once stopped', async () => {
    await server.stop();

    expect(server.running).toBe(false);
    await expect(mariaDbConnect(server)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});

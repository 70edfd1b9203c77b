/**
 * Private Redis and MariaDB servers for fault tests: each runs as a child process of the test,
 * on a spare loopback port, with its files in a temporary directory of its own, so a test can
 * stop, crash and restart it without touching the shared servers on 6379 and 3306.
 */

import { ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect, createServer, Socket } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';

import { createConnection } from 'mysql2/promise';

const HOST = '127.0.0.1';
const SHARED_PORTS = new Set([3306, 6379]);

const POLL_INTERVAL_MS = 50;
const PROBE_TIMEOUT_MS = 1_000;
const REDIS_READY_TIMEOUT_MS = 10_000;
const MARIADB_READY_TIMEOUT_MS = 30_000;
const MARIADB_INSTALL_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;
const KILL_TIMEOUT_MS = 5_000;
const PORT_CLOSE_TIMEOUT_MS = 5_000;

/** How many fresh ports `start()` tries when another process takes the one it picked. */
const START_ATTEMPTS = 3;
const FREE_PORT_ATTEMPTS = 10;
/** How much of a server's output is kept for error messages. */
const MAX_OUTPUT_CHARS = 20_000;

const MARIADBD = '/usr/sbin/mariadbd';

const execFileAsync = promisify(execFile);

/** Private servers take ports from here up to the kernel's ephemeral range, never inside it. */
const LOWEST_PRIVATE_PORT = 20_000;

/**
 * A port on 127.0.0.1 that was free a moment ago, below the kernel's range of ephemeral ports.
 * Inside that range, a client that keeps reconnecting to a stopped server can be given the
 * server's own port as its source port and connect to itself (TCP simultaneous open): it then
 * holds the port and talks to itself after the server is back. Another process may still take
 * the port before the caller binds it; `start()` retries on a fresh port when so.
 */
export async function freePort(): Promise<number> {
  const highest = (await ephemeralPortsStart()) - 1;

  for (let attempt = 0; attempt < FREE_PORT_ATTEMPTS; attempt++) {
    const port =
      LOWEST_PRIVATE_PORT + Math.floor(Math.random() * (highest - LOWEST_PRIVATE_PORT + 1));
    if (!SHARED_PORTS.has(port) && (await canListen(port))) {
      return port;
    }
  }

  throw new Error(`expected a free loopback port, got none in ${FREE_PORT_ATTEMPTS} attempts`);
}

async function ephemeralPortsStart(): Promise<number> {
  try {
    const range = await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8');
    const low = Number(range.trim().split(/\s+/)[0]);

    return Number.isInteger(low) && low > LOWEST_PRIVATE_PORT + 1000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

// Two safety nets keep a server from outliving the test process that forgot its destroy().
// The exit listener acts at once in a plain Node process, but Jest hands each test file a copy
// of `process` whose 'exit' never fires; the guard below acts under Jest, and also when the
// test process is killed outright.
const liveChildren = new Set<ChildProcess>();

function killLiveChildren(): void {
  for (const child of liveChildren) {
    child.kill('SIGKILL');
  }
}

function track(child: ChildProcess): void {
  if (liveChildren.size === 0) {
    process.on('exit', killLiveChildren);
  }
  liveChildren.add(child);
}

// The listener goes when the last child does, so test files that load this module one after
// another in the same worker do not pile up exit listeners.
function untrack(child: ChildProcess): void {
  liveChildren.delete(child);
  if (liveChildren.size === 0) {
    process.off('exit', killLiveChildren);
  }
}

/**
 * The guard reads a pipe only the test process writes to, so its read returns when that process
 * ends, however it ends; it then kills the server and removes its directory. The wait for the
 * server to go is bounded in case nothing reaps it. It runs in its own process group so a Ctrl-C
 * that ends the test process leaves the guard to do its work.
 */
const GUARD_SCRIPT = [
  'read -r _',
  'kill -KILL "$1" 2>/dev/null',
  'n=0',
  'while kill -0 "$1" 2>/dev/null && [ "$n" -lt 50 ]; do sleep 0.1; n=$((n + 1)); done',
  'rm -rf "$2"',
].join('\n');

function spawnGuard(serverPid: number, directory: string): ChildProcess {
  const guard = spawn(
    'sh',
    ['-c', GUARD_SCRIPT, 'private-server-guard', String(serverPid), directory],
    {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true,
    },
  );
  guard.unref();
  (guard.stdin as Socket | null)?.unref();

  return guard;
}

/** Resolves `true` when the promise settles within `ms`, `false` when the time runs out first. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });

  try {
    return await Promise.race([promise.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface PollOptions {
  timeoutMs: number;
  /** The error message when the deadline passes. */
  timedOut: () => string;
  /** A reason to give up before the deadline, such as the server having exited. */
  giveUp?: () => string | undefined;
}

async function pollUntil(condition: () => Promise<boolean>, options: PollOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const reason = options.giveUp?.();
    if (reason !== undefined) {
      throw new Error(reason);
    }
    if (await condition()) {
      return;
    }
    if (Date.now() >= deadline) {
      throw new Error(options.timedOut());
    }
    await delay(POLL_INTERVAL_MS);
  }
}

/** Whether something accepts TCP connections on the loopback port. */
function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    const finish = (open: boolean): void => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

/** Whether Redis answers PING with PONG; a server still loading its AOF answers -LOADING. */
function redisAnswersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    let reply = '';
    const finish = (answered: boolean): void => {
      socket.destroy();
      resolve(answered);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) {
        finish(reply.startsWith('+PONG'));
      }
    });
  });
}

/** Whether root logs in over TCP without a password, as the tests' connection URL does. */
async function mariaDbAcceptsRoot(port: number): Promise<boolean> {
  try {
    const connection = await createConnection({
      host: HOST,
      port,
      user: 'root',
      password: '',
      connectTimeout: PROBE_TIMEOUT_MS,
    });
    await connection.end();

    return true;
  } catch {
    return false;
  }
}

/** A server binary running in the foreground as our child, its output kept for errors. */
class ServerProcess {
  private readonly child: ChildProcess;
  private output = '';
  private exitStatus: string | undefined;
  private readonly exited: Promise<void>;

  constructor(command: string, args: string[], cwd: string) {
    this.child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    track(this.child);
    const guard = this.child.pid === undefined ? undefined : spawnGuard(this.child.pid, cwd);

    const append = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString()).slice(-MAX_OUTPUT_CHARS);
    };
    this.child.stdout?.on('data', append);
    this.child.stderr?.on('data', append);

    // Unreferenced, a server left running by a failed test does not keep Jest from exiting;
    // the safety nets then kill it. Every wait below holds a timer, so awaiting the server
    // still keeps the process alive.
    this.child.unref();
    (this.child.stdout as Socket | null)?.unref();
    (this.child.stderr as Socket | null)?.unref();

    // 'close' rather than 'exit': it comes once the output pipes are drained too, so an error
    // message built after it holds the server's last words.
    this.exited = new Promise((resolve) => {
      const settle = (status: string): void => {
        this.exitStatus ??= status;
        untrack(this.child);
        guard?.kill();
        resolve();
      };
      this.child.once('error', (error) => settle(`failed to run ${command}: ${error.message}`));
      this.child.once('close', (code, signal) =>
        settle(signal ? `was ended by ${signal}` : `exited with code ${code}`),
      );
    });
  }

  get running(): boolean {
    return this.exitStatus === undefined;
  }

  /** How the process ended, or `undefined` while it runs. */
  get status(): string | undefined {
    return this.exitStatus;
  }

  log(): string {
    return this.output.trimEnd() || '(no output)';
  }

  /**
   * Sends the signal and waits for the process to exit. A process that outlives the timeout
   * is killed, and the call fails so the test learns that the clean shutdown did not happen.
   */
  async signal(signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
    if (!this.running) {
      return;
    }

    this.child.kill(signal);
    if (await settlesWithin(this.exited, timeoutMs)) {
      return;
    }

    this.child.kill('SIGKILL');
    await settlesWithin(this.exited, KILL_TIMEOUT_MS);
    throw new Error(
      `expected the server to exit within ${timeoutMs} ms of ${signal}, it did not; ` +
        `killed it. Its output:\n${this.log()}`,
    );
  }
}

/** The lifecycle both private servers share: start on a free port, stop, crash, restart. */
abstract class PrivateServer {
  private assignedPort = 0;
  private process: ServerProcess | undefined;

  protected constructor(protected readonly directory: string) {}

  /** The loopback port, the same for the server's whole life, restarts included. */
  get port(): number {
    return this.assignedPort;
  }

  /** Whether the server process is running (it may still be starting up). */
  get running(): boolean {
    return this.process?.running ?? false;
  }

  abstract get url(): string;

  protected abstract readonly name: string;
  protected abstract readonly readyTimeoutMs: number;
  protected abstract spawnServer(): ServerProcess;
  protected abstract answers(): Promise<boolean>;

  /**
   * Stops the server cleanly and waits until its port refuses connections; nothing to do when
   * it is not running.
   */
  async stop(): Promise<void> {
    await this.end('SIGTERM', STOP_TIMEOUT_MS);
  }

  /** Kills the server with SIGKILL, as a crash would, and waits until its port is closed. */
  async kill(): Promise<void> {
    await this.end('SIGKILL', KILL_TIMEOUT_MS);
  }

  /** Starts the server again on the same port with the same files; a running one stops first. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  /** Kills the server if it runs and removes its directory; the data is discarded anyway. */
  async destroy(): Promise<void> {
    await this.process?.signal('SIGKILL', KILL_TIMEOUT_MS);
    await rm(this.directory, { recursive: true, force: true });
  }

  /** Runs `prepare`, then starts on a free port; on any failure nothing is left behind. */
  protected async open(prepare?: () => Promise<void>): Promise<void> {
    try {
      await prepare?.();
      await this.launchOnFreePort();
    } catch (error) {
      await this.destroy();
      throw error;
    }
  }

  private async launchOnFreePort(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      this.assignedPort = await freePort();
      try {
        await this.launch();

        return;
      } catch (error) {
        // Only a port taken between freePort() and the server's bind is worth another try.
        const portTaken = this.process?.log().includes('Address already in use') ?? false;
        if (!portTaken || attempt >= START_ATTEMPTS) {
          throw error;
        }
      }
    }
  }

  private async launch(): Promise<void> {
    const server = this.spawnServer();
    this.process = server;

    try {
      await pollUntil(() => this.answers(), {
        timeoutMs: this.readyTimeoutMs,
        giveUp: () =>
          server.status &&
          `${this.name} ${server.status} before answering on ${HOST}:${this.port}. ` +
            `Its output:\n${server.log()}`,
        timedOut: () =>
          `expected ${this.name} to answer on ${HOST}:${this.port} within ` +
          `${this.readyTimeoutMs} ms, it did not. Its output:\n${server.log()}`,
      });
    } catch (error) {
      await server.signal('SIGKILL', KILL_TIMEOUT_MS);
      throw error;
    }
  }

  private async end(signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
    if (!this.process?.running) {
      return;
    }

    await this.process.signal(signal, timeoutMs);
    await this.waitUntilClosed();
  }

  private async waitUntilClosed(): Promise<void> {
    await pollUntil(async () => !(await acceptsConnections(this.port)), {
      timeoutMs: PORT_CLOSE_TIMEOUT_MS,
      timedOut: () =>
        `expected ${HOST}:${this.port} to refuse connections once ${this.name} exited, ` +
        'it still accepts them: another process holds the port',
    });
  }
}

/** Options for {@link PrivateRedis.start}. */
export interface PrivateRedisOptions {
  /**
   * Keep an append-only file, so data survives `stop()` and `restart()`. With the default
   * fsync policy (every second) a `kill()` may lose the last second of writes, as in production.
   * @defaultValue false: the server comes back empty after every restart
   */
  appendOnly?: boolean;
}

/** A Redis server of the test's own; see the module comment. */
export class PrivateRedis extends PrivateServer {
  protected readonly name = 'redis-server';
  protected readonly readyTimeoutMs = REDIS_READY_TIMEOUT_MS;

  private constructor(
    directory: string,
    private readonly appendOnly: boolean,
  ) {
    super(directory);
  }

  /**
   * Starts redis-server on a free loopback port, with its files in a new temporary directory,
   * and resolves once it answers PING.
   */
  static async start(options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
    const directory = await mkdtemp(join(tmpdir(), 'lq-redis-'));
    const server = new PrivateRedis(directory, options.appendOnly ?? false);
    await server.open();

    return server;
  }

  /** `redis://127.0.0.1:<port>` */
  get url(): string {
    return `redis://${HOST}:${this.port}`;
  }

  protected spawnServer(): ServerProcess {
    // No RDB snapshots ever; the append-only file is the only persistence, when asked for.
    const args = [
      ['--port', String(this.port)],
      ['--bind', HOST],
      ['--save', ''],
      ['--appendonly', this.appendOnly ? 'yes' : 'no'],
      ['--dir', this.directory],
      ['--daemonize', 'no'],
    ].flat();

    return new ServerProcess('redis-server', args, this.directory);
  }

  protected answers(): Promise<boolean> {
    return redisAnswersPing(this.port);
  }
}

/** A MariaDB server of the test's own, on a data directory made for it; see the module comment. */
export class PrivateMariaDb extends PrivateServer {
  protected readonly name = 'mariadbd';
  protected readonly readyTimeoutMs = MARIADB_READY_TIMEOUT_MS;

  private constructor(directory: string) {
    super(directory);
  }

  /**
   * Creates a data directory in a new temporary directory, starts mariadbd on a free loopback
   * port and resolves once root logs in over TCP without a password.
   */
  static async start(): Promise<PrivateMariaDb> {
    const directory = await mkdtemp(join(tmpdir(), 'lq-mariadb-'));
    const server = new PrivateMariaDb(directory);
    await server.open(() => server.install());

    return server;
  }

  /** `mysql://root@127.0.0.1:<port>`, without a database; append `/<name>` for one. */
  get url(): string {
    return `mysql://root@${HOST}:${this.port}`;
  }

  private get dataDirectory(): string {
    return join(this.directory, 'data');
  }

  /** Options both the installer and the server take; the server refuses root without --user. */
  private get commonArgs(): string[] {
    return [
      `--datadir=${this.dataDirectory}`,
      `--user=${userInfo().username}`,
      '--skip-name-resolve',
      '--innodb-buffer-pool-size=32M',
      // Without it the installer writes a 96 MiB redo log and the server shrinks it on start.
      '--innodb-log-file-size=8M',
    ];
  }

  // "normal" creates root@localhost, root@127.0.0.1 and root@::1 without a password; the
  // default ("socket") would let root in only over the Unix socket as the system user root.
  private async install(): Promise<void> {
    const args = [
      '--no-defaults',
      ...this.commonArgs,
      '--auth-root-authentication-method=normal',
      '--skip-test-db',
    ];
    try {
      await execFileAsync('mariadb-install-db', args, {
        cwd: this.directory,
        timeout: MARIADB_INSTALL_TIMEOUT_MS,
      });
    } catch (error) {
      const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
      throw new Error(
        `mariadb-install-db failed to create ${this.dataDirectory}: ${(error as Error).message}\n` +
          `${stdout}${stderr}`,
        { cause: error },
      );
    }
  }

  protected spawnServer(): ServerProcess {
    // --no-defaults must come first: it keeps /etc/mysql's settings (port 3306, the shared
    // socket) out of the private server. Committed transactions still reach the disk at once,
    // so data written before a kill() survives it.
    const args = [
      '--no-defaults',
      ...this.commonArgs,
      `--port=${this.port}`,
      `--bind-address=${HOST}`,
      `--socket=${join(this.directory, 'mysqld.sock')}`,
      `--pid-file=${join(this.directory, 'mysqld.pid')}`,
      `--tmpdir=${this.directory}`,
      '--skip-log-bin',
      '--innodb-buffer-pool-dump-at-shutdown=OFF',
      '--innodb-buffer-pool-load-at-startup=OFF',
    ];

    return new ServerProcess(MARIADBD, args, this.directory);
  }

  protected answers(): Promise<boolean> {
    return mariaDbAcceptsRoot(this.port);
  }
}

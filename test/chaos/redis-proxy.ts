import { createServer, Server, Socket } from 'node:net';

/**
 * A TCP relay between one process and Redis that can be made to swallow traffic, so that the
 * process sees a Redis that accepts connections but never answers (a network partition).
 */
export class RedisProxy {
  private readonly sockets = new Set<Socket>();
  private blackholed = false;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<RedisProxy> {
    // Assigned as soon as `listen` resolves, before any connection callback can run.
    let proxy: RedisProxy | undefined;
    const server = createServer((client) => {
      const upstream = new Socket();
      upstream.connect(targetPort, '127.0.0.1');
      for (const socket of [client, upstream]) {
        proxy?.sockets.add(socket);
        socket.on('error', () => socket.destroy());
        socket.on('close', () => proxy?.sockets.delete(socket));
      }
      client.on('data', (chunk) => proxy?.relay(upstream, chunk));
      upstream.on('data', (chunk) => proxy?.relay(client, chunk));
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });

    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    proxy = new RedisProxy(server, port);

    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Drops everything in both directions until `restore`; connections stay open. */
  blackhole(): void {
    this.blackholed = true;
  }

  /** Relays again, and closes the connections that lost data so that clients reconnect. */
  restore(): void {
    this.blackholed = false;
    this.sockets.forEach((socket) => socket.destroy());
  }

  async close(): Promise<void> {
    this.sockets.forEach((socket) => socket.destroy());
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private relay(to: Socket, chunk: Buffer): void {
    if (!this.blackholed && !to.destroyed) {
      to.write(chunk);
    }
  }
}

import { createServer, Server, Socket } from 'node:net';

/**
 * A TCP relay between one process and Redis that can be made to swallow traffic, so that the
 * process sees a Redis that accepts connections but never answers (a network partition).
 */
export class RedisProxy {
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;
  private blackholed = false;
  port = 0;

  private constructor(targetPort: number) {
    this.server = createServer((client) => this.relayConnection(client, targetPort));
  }

  static async start(targetPort: number): Promise<RedisProxy> {
    const proxy = new RedisProxy(targetPort);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    const address = proxy.server.address();
    proxy.port = typeof address === 'object' && address ? address.port : 0;

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

  private relayConnection(client: Socket, targetPort: number): void {
    const upstream = new Socket();
    upstream.connect(targetPort, '127.0.0.1');
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('error', () => socket.destroy());
      socket.on('close', () => this.sockets.delete(socket));
    }
    client.on('data', (chunk: Buffer) => this.relay(upstream, chunk));
    upstream.on('data', (chunk: Buffer) => this.relay(client, chunk));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }

  private relay(to: Socket, chunk: Buffer): void {
    if (!this.blackholed && !to.destroyed) {
      to.write(chunk);
    }
  }
}

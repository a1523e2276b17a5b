import net from 'node:net';

/**
 * Proxy relays TCP connections to a port of 127.0.0.1 (a broker's WebSocket
 * listener), so that a test can cut a client off without touching the broker,
 * as a network failure would: cut closes every relayed connection and refuses
 * new ones (it closes them as they come) until resume.
 */
export class Proxy {
  private refused = false;
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  /** start listens on a free port and relays to targetPort. */
  static async start(targetPort: number): Promise<Proxy> {
    let proxy: Proxy | undefined;
    const server = net.createServer((client) => proxy?.relay(client, targetPort));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    proxy = new Proxy(server, (server.address() as net.AddressInfo).port);
    return proxy;
  }

  /** The proxy's WebSocket URL. */
  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** cut closes every relayed connection and refuses new ones until resume. */
  cut(): void {
    this.refused = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  resume(): void {
    this.refused = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private relay(client: net.Socket, targetPort: number): void {
    if (this.refused) {
      client.destroy();
      return;
    }
    const broker = net.connect({ host: '127.0.0.1', port: targetPort });
    for (const [a, b] of [[client, broker], [broker, client]] as const) {
      this.sockets.add(a);
      a.on('error', () => b.destroy());
      a.on('close', () => {
        this.sockets.delete(a);
        b.destroy();
      });
      a.pipe(b);
    }
  }
}

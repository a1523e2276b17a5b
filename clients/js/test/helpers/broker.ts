import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './wait.js';

/**
 * Broker is a private Mosquitto for one test file: a TCP listener (Herald's
 * side, and required: Debian's mosquitto 2.0.11 will not start with only a
 * WebSocket listener) and a WebSocket listener (the game client's side), on
 * free 127.0.0.1 ports, its config in a temp dir. It can be killed and started
 * again on the same ports; stop kills it and removes the dir.
 */
export class Broker {
  private child: ChildProcess | undefined;
  private output = '';

  private constructor(
    readonly dir: string,
    readonly tcpPort: number,
    readonly wsPort: number,
  ) {}

  /** The TCP listener: what Herald uses, and what mqtt:// clients use under Node. */
  get tcpUrl(): string {
    return `mqtt://127.0.0.1:${this.tcpPort}`;
  }

  /** The WebSocket listener: what browsers and Cocos Creator use. */
  get wsUrl(): string {
    return `ws://127.0.0.1:${this.wsPort}`;
  }

  static async start(): Promise<Broker> {
    const dir = await mkdtemp(join(tmpdir(), 'herald-js-broker-'));
    const b = new Broker(dir, await freePort(), await freePort());
    await writeFile(
      join(dir, 'mosquitto.conf'),
      [
        `listener ${b.tcpPort} 127.0.0.1`,
        `listener ${b.wsPort} 127.0.0.1`,
        'protocol websockets',
        'allow_anonymous true',
        'persistence false',
        'log_dest stderr',
        'log_type error',
        'log_type warning',
        '',
      ].join('\n'),
    );
    await b.run();
    return b;
  }

  /** run starts Mosquitto and resolves once both listeners accept connections. */
  async run(): Promise<void> {
    if (this.child !== undefined) throw new Error('broker already running');
    const child = spawn('mosquitto', ['-c', join(this.dir, 'mosquitto.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    let exited = false;
    // Should the test process die without stop, the broker goes with it.
    const killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);
    child.once('exit', () => {
      exited = true;
      process.off('exit', killOnExit);
    });
    await waitFor(
      async () => {
        if (exited) throw new Error(`mosquitto exited at start: ${this.output}`);
        return (await accepts(this.tcpPort)) && (await accepts(this.wsPort));
      },
      `mosquitto on ports ${this.tcpPort} and ${this.wsPort}`,
    );
  }

  /** kill stops Mosquitto at once (SIGKILL), as a crash would, and waits for it to exit. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /** stop kills Mosquitto and removes its directory. */
  async stop(): Promise<void> {
    await this.kill();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** freePort asks the kernel for a free 127.0.0.1 port. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.setTimeout(2000);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('timeout', () => {
      sock.destroy();
      resolve(false);
    });
    sock.once('error', () => resolve(false));
  });
}

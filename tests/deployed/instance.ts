import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { sleep } from '../faults/pipeline';

/**
 * One container instance as Cloud Run runs it: its own PID namespace in which the service
 * is PID 1, its own UTS namespace with hostname `localhost`, its own mount namespace (for
 * volume mounts such as the gateway's secret) and its own network namespace, so every
 * instance listens on the same container port. Requires root and util-linux (unshare,
 * nsenter) and iproute2 (ip).
 */
const RELAY = join(__dirname, 'netns-relay.js');
/** Cloud Run's shutdown: SIGTERM, then SIGKILL if the instance has not exited 10 s later. */
export const SHUTDOWN_GRACE_MS = 10_000;

function relay(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
}

async function listen(server: Server, ...address: [string] | [number, string]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(...(address as [number, string]), () => resolve());
  });
}

type Relay = { listen: number | string; connect: number | string };

/** netns-relay.js behind `prefix` (a command that enters a namespace first), once it listens. */
async function startRelay(prefix: readonly string[], relays: readonly Relay[], what: string): Promise<ChildProcess> {
  const argv = [...prefix, process.execPath, RELAY, JSON.stringify({ relays })];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`${what}: relay exited (${code})`)));
  });
  return child;
}

/**
 * The host side of the instances' networks: a relay process serving a Unix socket for each host
 * port instances may reach (the Pub/Sub emulator, the GCS fake; a process of its own, so the
 * test's event loop does not carry that traffic), and TCP listeners that route into instances.
 */
export class HostNetwork {
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();
  private upstreamRelay: ChildProcess | undefined;
  readonly upstreams: Relay[] = [];

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  /** Lets every instance reach 127.0.0.1:`port` of the host, for each port, at the same address. */
  async expose(ports: readonly number[]): Promise<void> {
    const toHost = ports.map((port) => ({ listen: join(this.dir, `host-${port}.sock`), connect: port }));
    this.upstreamRelay = await startRelay([], toHost, 'host network');
    this.upstreams.push(...toHost.map((r) => ({ listen: r.connect, connect: r.listen })));
  }

  /** A host URL whose every connection goes to the instance socket `route()` names (a front end). */
  async route(route: () => string | undefined): Promise<string> {
    const server = createServer((c) => {
      const target = route();
      if (target) this.relay(c, connect(target));
      else c.destroy();
    });
    await listen(server, 0, '127.0.0.1');
    this.servers.push(server);
    const address = server.address();
    if (typeof address !== 'object' || !address) throw new Error('no address');
    return `http://127.0.0.1:${address.port}`;
  }

  private relay(a: Socket, b: Socket): void {
    for (const s of [a, b]) {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    }
    relay(a, b);
  }

  /** The network goes away with its instances: open relays are cut, not waited for. */
  async close(): Promise<void> {
    this.upstreamRelay?.kill('SIGKILL');
    const closed = Promise.all(this.servers.map((s) => new Promise((r) => s.close(r))));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}

export interface InstanceSpec {
  name: string;
  /** The container command, as CMD in its Dockerfile. */
  argv: readonly string[];
  env: Record<string, string>;
  cwd: string;
  logFile: string;
  /** The port the service listens on inside its instance. */
  containerPort: number;
  /** Host directories mounted at a path inside the instance (Cloud Run volume mounts). */
  mounts: ReadonlyArray<{ source: string; target: string }>;
}

/** The host PID of the process whose parent is `ppid`, from /proc (ppid is field 4 of stat). */
function childOf(ppid: number): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === ppid) return Number(entry);
    } catch {
      /* exited meanwhile */
    }
  }
  return undefined;
}

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export class Instance {
  /** The instance's container port as the host reaches it. */
  url = '';
  private pid1 = -1;

  private constructor(
    readonly spec: InstanceSpec,
    readonly socket: string,
    private readonly network: ChildProcess,
    private readonly app: ChildProcess,
  ) {}

  get name(): string {
    return this.spec.name;
  }

  static async start(spec: InstanceSpec, host: HostNetwork): Promise<Instance> {
    const socket = join(host.dir, `${spec.name}.sock`);
    // The relay holds the instance's network namespace: the service joins it with nsenter.
    const network = await startRelay(
      ['unshare', '--net', '--', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh'],
      [...host.upstreams, { listen: socket, connect: spec.containerPort }],
      spec.name,
    );
    const setup = [
      'hostname localhost',
      ...spec.mounts.map((m) => `mount --bind ${quote(m.source)} ${quote(m.target)}`),
      'exec "$@"',
    ].join(' && ');
    const out = openSync(spec.logFile, 'a');
    const app = spawn(
      'nsenter',
      [
        `--net=/proc/${network.pid}/ns/net`,
        '--',
        'unshare',
        '--pid',
        '--uts',
        '--mount',
        '--fork',
        '--mount-proc',
        '--',
        'sh',
        '-c',
        setup,
        'sh',
        ...spec.argv,
      ],
      { env: spec.env, cwd: spec.cwd, stdio: ['ignore', out, out] },
    );
    closeSync(out); // the instance has its own copy
    const instance = new Instance(spec, socket, network, app);
    app.once('exit', () => network.kill('SIGKILL'));
    await instance.findPid1();
    return instance;
  }

  private async findPid1(): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && this.running) {
      const pid = childOf(this.app.pid!);
      if (pid !== undefined) {
        this.pid1 = pid;
        return;
      }
      await sleep(20);
    }
    throw new Error(`${this.name}: its PID 1 did not start`);
  }

  get running(): boolean {
    return this.app.exitCode === null && this.app.signalCode === null;
  }

  /** Delivered from outside the namespace: SIGKILL always, other signals if PID 1 handles them. */
  signal(sig: NodeJS.Signals): void {
    if (this.running) process.kill(this.pid1, sig);
  }

  async exited(timeoutMs: number): Promise<boolean> {
    if (!this.running) return true;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.app.once('exit', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Shut down as Cloud Run does (scale-in, revision replaced): SIGTERM, SIGKILL after the grace. */
  async stop(): Promise<void> {
    this.signal('SIGTERM');
    if (await this.exited(SHUTDOWN_GRACE_MS)) return;
    this.signal('SIGKILL');
    await this.exited(10_000);
  }
}

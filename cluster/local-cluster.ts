import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One member of a local cluster: its name, URLs, data and process. */
export interface LocalMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  process: ChildProcess | undefined;
}

/** A member process that ended without being asked to. */
export interface MemberExit {
  readonly name: string;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Whether it is started again (after restartDelayMs). */
  readonly restarting: boolean;
  /** Restarts of this member in the last minute, this one included. */
  readonly restartsInLastMinute: number;
}

export interface LocalClusterOptions {
  /** Members, 1 to 7. Default 3. */
  readonly size?: number;
  /** Where each member keeps its data (`<dir>/<name>`) and the cluster its layout (`<dir>/cluster.json`). Default `./.cairn`. */
  readonly dir?: string;
  /**
   * Member i (from 0) gets client port `clientPort + 10000 * i` and peer port
   * `peerPort + 10000 * i`: 2379/2380, 12379/12380, 22379/22380... Defaults 2379
   * and 2380. 0 picks free ports (tests). A directory that already holds a
   * cluster keeps the ports it was formed with.
   */
  readonly clientPort?: number;
  readonly peerPort?: number;
  readonly host?: string;
  /** Extra `cairn serve` flags for every member (e.g. shorter timeouts in tests). */
  readonly extraFlags?: readonly string[];
  /** Where each member's log lines go. Default: this process's stdout, prefixed with the member's name. */
  readonly onLine?: (member: string, line: string) => void;
  /** Start again a member whose process ended without stop()/stopMember(), at most this many times a minute each. Default 0: never. */
  readonly maxRestartsPerMinute?: number;
  /** Wait before such a restart. Default 1000 ms. */
  readonly restartDelayMs?: number;
  /** Hears of every member process that ended without being asked to. */
  readonly onExit?: (exit: MemberExit) => void;
  /**
   * Members in process groups of their own, so a Ctrl-C in the terminal reaches
   * only this process, which then stops them in order (`cairn cluster up`).
   * Default false: they share this process's group and its terminal signals.
   */
  readonly ownProcessGroups?: boolean;
}

/** Ports of member i are these apart (2379, 12379, 22379...). */
export const PORT_STRIDE = 10_000;
const LAYOUT_FILE = 'cluster.json';
const CLUSTER_TOKEN = 'cairn-local';
const MINUTE_MS = 60_000;

/** What `<dir>/cluster.json` keeps, so a cluster comes back on the same ports with the same members. */
interface Layout {
  readonly token: string;
  readonly members: readonly { readonly name: string; readonly clientUrl: string; readonly peerUrl: string }[];
}

/** The built CLI entry point: next to this file when it runs from dist/, else in dist/ (tests run the sources). */
const CLI_MAIN = fileURLToPath(
  new URL(fileURLToPath(import.meta.url).includes(`${sep}dist${sep}`) ? '../cli/main.js' : '../dist/cli/main.js', import.meta.url),
);

/** Asks the OS for a free loopback port (bind to 0, read it, release it). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

async function readLayout(dir: string): Promise<Layout | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, LAYOUT_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const layout = JSON.parse(text) as Layout;
  if (typeof layout.token !== 'string' || !Array.isArray(layout.members) || layout.members.length === 0) throw new Error(`${join(dir, LAYOUT_FILE)} is malformed`);
  return layout;
}

async function portOf(base: number | undefined, fallback: number, i: number, host: string, what: string): Promise<number> {
  if (base === 0) return freePort(host);
  const port = (base ?? fallback) + PORT_STRIDE * i;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`the ${what} port of member ${i + 1} would be ${port}: choose a lower first ${what} port`);
  return port;
}

async function newLayout(options: LocalClusterOptions, size: number): Promise<Layout> {
  const host = options.host ?? '127.0.0.1';
  const members = [];
  for (let i = 0; i < size; i++) {
    const clientPort = await portOf(options.clientPort, 2379, i, host, 'client');
    const peerPort = await portOf(options.peerPort, 2380, i, host, 'peer');
    members.push({ name: `n${i + 1}`, clientUrl: `http://${host}:${clientPort}`, peerUrl: `http://${host}:${peerPort}` });
  }
  return { token: CLUSTER_TOKEN, members };
}

/** A layout kept from an earlier run must not silently contradict what was asked now. */
function checkLayout(dir: string, layout: Layout, options: LocalClusterOptions): void {
  const size = layout.members.length;
  const fix = `run without those flags to start it as it was, or use another --dir for a new cluster`;
  if (options.size !== undefined && options.size !== size) throw new Error(`${dir} holds a cluster of ${size} member${size === 1 ? '' : 's'}, not ${options.size}: ${fix}`);
  const port = (url: string): number => Number(new URL(url).port);
  if (options.clientPort && options.clientPort !== port(layout.members[0].clientUrl)) throw new Error(`${dir} holds a cluster whose first client port is ${port(layout.members[0].clientUrl)}: ${fix}`);
  if (options.peerPort && options.peerPort !== port(layout.members[0].peerUrl)) throw new Error(`${dir} holds a cluster whose first peer port is ${port(layout.members[0].peerUrl)}: ${fix}`);
}

interface Supervision {
  /** False once stopMember()/stop() asked the process to end: its exit is then no failure. */
  wanted: boolean;
  restartTimer: NodeJS.Timeout | undefined;
  /** Times of the restarts in the last minute. Bounded by maxRestartsPerMinute. */
  restarts: number[];
}

/**
 * A cluster of `cairn serve` processes on this machine: what `cairn cluster up`
 * and `npm start` run, and what integration tests start. The first start forms
 * the cluster; starting again on the same directory restarts the members from
 * their data, on the ports recorded in `<dir>/cluster.json`.
 */
export class LocalCluster {
  private readonly supervision = new Map<string, Supervision>();

  private constructor(
    readonly members: readonly LocalMember[],
    readonly clusterToken: string,
    private readonly options: LocalClusterOptions,
  ) {
    for (const m of members) this.supervision.set(m.name, { wanted: false, restartTimer: undefined, restarts: [] });
  }

  static async create(options: LocalClusterOptions = {}): Promise<LocalCluster> {
    if (options.size !== undefined && (!Number.isInteger(options.size) || options.size < 1 || options.size > 7)) {
      throw new RangeError(`cluster size must be 1 to 7 (got ${options.size})`);
    }
    const dir = resolve(options.dir ?? '.cairn');
    let layout = await readLayout(dir);
    if (layout) checkLayout(dir, layout, options);
    else {
      layout = await newLayout(options, options.size ?? 3);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, LAYOUT_FILE), JSON.stringify(layout, null, 2) + '\n');
    }
    const members = layout.members.map((m) => ({ ...m, dataDir: join(dir, m.name), process: undefined }));
    return new LocalCluster(members, layout.token, options);
  }

  get clientUrls(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  /** `--initial-cluster` of the founders: n1=http://...,n2=... */
  get initialCluster(): string {
    return this.members.map((x) => `${x.name}=${x.peerUrl}`).join(',');
  }

  /** Starts every member that is not running. */
  async start(): Promise<void> {
    for (const m of this.members) if (!m.process) await this.startMember(m.name);
  }

  async startMember(name: string): Promise<void> {
    const m = this.member(name);
    const supervision = this.supervision.get(name)!;
    supervision.wanted = true;
    clearTimeout(supervision.restartTimer);
    supervision.restartTimer = undefined;
    if (m.process) return;
    await mkdir(m.dataDir, { recursive: true });
    const args = [
      CLI_MAIN,
      'serve',
      '--name', m.name,
      '--data-dir', m.dataDir,
      '--listen-client-urls', m.clientUrl,
      '--listen-peer-urls', m.peerUrl,
      '--initial-cluster', this.initialCluster,
      '--initial-cluster-token', this.clusterToken,
      ...(this.options.extraFlags ?? []),
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: this.options.ownProcessGroups === true });
    m.process = child;
    const onLine = this.options.onLine ?? ((member: string, line: string) => process.stdout.write(`[${member}] ${line}\n`));
    for (const stream of [child.stdout, child.stderr]) {
      let buffered = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        buffered += chunk;
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) onLine(m.name, line);
      });
    }
    child.once('exit', (code, signal) => {
      if (m.process === child) m.process = undefined;
      this.onMemberExit(m.name, code, signal);
    });
  }

  private onMemberExit(name: string, code: number | null, signal: NodeJS.Signals | null): void {
    const supervision = this.supervision.get(name)!;
    if (!supervision.wanted) return;
    const now = Date.now();
    supervision.restarts = supervision.restarts.filter((t) => now - t < MINUTE_MS);
    const restarting = supervision.restarts.length < (this.options.maxRestartsPerMinute ?? 0);
    if (restarting) supervision.restarts.push(now);
    this.options.onExit?.({ name, code, signal, restarting, restartsInLastMinute: supervision.restarts.length });
    if (!restarting) {
      supervision.wanted = false;
      return;
    }
    supervision.restartTimer = setTimeout(() => {
      supervision.restartTimer = undefined;
      if (supervision.wanted) this.startMember(name).catch((err: unknown) => this.options.onLine?.(name, `restart failed: ${(err as Error).message}`));
    }, this.options.restartDelayMs ?? 1000);
  }

  /** Stops one member: `signal` (SIGTERM: graceful), then SIGKILL if it has not exited within graceMs. Not restarted. */
  async stopMember(name: string, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
    const supervision = this.supervision.get(name)!;
    supervision.wanted = false;
    clearTimeout(supervision.restartTimer);
    supervision.restartTimer = undefined;
    const child = this.member(name).process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  /** Stops every member (gracefully unless told otherwise). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await Promise.all(this.members.map((m) => this.stopMember(m.name, signal)));
  }

  /** Waits until every running member answers /readyz with 200 (it has a leader and has caught up), or throws at the deadline. */
  async waitReady(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const m of this.members) {
      if (!m.process) continue;
      for (;;) {
        if (await isReady(m.clientUrl)) break;
        if (Date.now() > deadline) throw new Error(`member ${m.name} (${m.clientUrl}) not ready within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  member(name: string): LocalMember {
    const m = this.members.find((x) => x.name === name);
    if (!m) throw new RangeError(`no member ${name}`);
    return m;
  }
}

async function isReady(clientUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${clientUrl}/readyz`, { signal: AbortSignal.timeout(1000) });
    await res.body?.cancel();
    return res.status === 200;
  } catch {
    return false;
  }
}

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
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

export interface LocalClusterOptions {
  /** Members, 1 to 7. Default 3. */
  readonly size?: number;
  /** Where each member keeps its data (`<dir>/<name>`). Default `./.cairn`. */
  readonly dir?: string;
  /** Client ports are `clientPort`, `+1`, ...; peer ports `peerPort`, `+1`, ... Default 2379 and 2380 + 100. 0 picks free ports. */
  readonly clientPort?: number;
  readonly peerPort?: number;
  readonly host?: string;
  /** Extra `cairn serve` flags for every member (e.g. shorter timeouts in tests). */
  readonly extraFlags?: readonly string[];
  /** Where each member's log lines go, prefixed with its name. Default: this process's stdout/stderr. */
  readonly onLine?: (member: string, line: string) => void;
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

/**
 * A cluster of `cairn serve` processes on this machine: what `cairn cluster up`
 * and `npm start` run, and what integration tests start. The first start forms
 * the cluster; starting again on the same directory restarts the members from
 * their data.
 */
export class LocalCluster {
  private constructor(
    readonly members: readonly LocalMember[],
    private readonly token: string,
    private readonly options: LocalClusterOptions,
  ) {}

  static async create(options: LocalClusterOptions = {}): Promise<LocalCluster> {
    const size = options.size ?? 3;
    if (!Number.isInteger(size) || size < 1 || size > 7) throw new RangeError(`cluster size must be 1 to 7 (got ${size})`);
    const host = options.host ?? '127.0.0.1';
    const dir = resolve(options.dir ?? '.cairn');
    const members: LocalMember[] = [];
    for (let i = 0; i < size; i++) {
      const clientPort = options.clientPort === 0 ? await freePort(host) : (options.clientPort ?? 2379) + i * 10;
      const peerPort = options.peerPort === 0 ? await freePort(host) : (options.peerPort ?? 2380) + i * 10;
      const name = `n${i + 1}`;
      members.push({ name, clientUrl: `http://${host}:${clientPort}`, peerUrl: `http://${host}:${peerPort}`, dataDir: join(dir, name), process: undefined });
    }
    return new LocalCluster(members, 'cairn-local', options);
  }

  get clientUrls(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  /** Starts every member that is not running. */
  async start(): Promise<void> {
    for (const m of this.members) if (!m.process) await this.startMember(m.name);
  }

  async startMember(name: string): Promise<void> {
    const m = this.member(name);
    if (m.process) return;
    await mkdir(m.dataDir, { recursive: true });
    const initialCluster = this.members.map((x) => `${x.name}=${x.peerUrl}`).join(',');
    const args = [
      CLI_MAIN,
      'serve',
      '--name', m.name,
      '--data-dir', m.dataDir,
      '--listen-client-urls', m.clientUrl,
      '--listen-peer-urls', m.peerUrl,
      '--initial-cluster', initialCluster,
      '--initial-cluster-token', this.token,
      ...(this.options.extraFlags ?? []),
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
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
    child.once('exit', () => {
      if (m.process === child) m.process = undefined;
    });
  }

  /** Stops one member: SIGTERM (graceful), then SIGKILL if it has not exited within graceMs. */
  async stopMember(name: string, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
    const child = this.member(name).process;
    if (!child || child.exitCode !== null) return;
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

  /** Waits until every running member answers /readyz with 200, or throws at the deadline. */
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

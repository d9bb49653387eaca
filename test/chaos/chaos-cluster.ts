// A cluster of real `cairn serve` processes whose peers reach each other only
// through fault proxies owned by the test: each member's advertised peer URL
// (--initial-cluster, --initial-advertise-peer-urls) is its proxy, its real
// --listen-peer-urls a private port. Links are broken at the proxies; processes
// are killed, paused and restarted by pid.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Agent } from 'undici';
import { freePort } from '../../cluster/local-cluster.js';
import { memberIdFor } from '../../src/node/config.js';
import { FaultProxy, NO_FAULT, type LinkFault } from './fault-proxy.js';
import { newAgent, probe } from './http.js';
import { MemberProcess, type ProcessExit } from './member-process.js';
import type { Random } from './random.js';

export interface ChaosClusterOptions {
  readonly size: number;
  /** Each member keeps its data in `<dir>/<name>`. */
  readonly dir: string;
  readonly random: Random;
  readonly heartbeatIntervalMs?: number;
  readonly electionTimeoutMs?: number;
  readonly snapshotCount?: number;
  readonly logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Told of every member exit (expected or not). */
  readonly onExit?: (member: string, exit: ProcessExit) => void;
}

export interface ChaosMember {
  readonly name: string;
  /** Member id: derived from the advertised peer URL (the proxy's) and the token, as cairn does. */
  readonly id: string;
  readonly clientUrl: string;
  readonly proxyUrl: string;
  readonly dataDir: string;
  readonly proxy: FaultProxy;
  readonly process: MemberProcess;
}

const TOKEN = 'cairn-chaos';

export class ChaosCluster {
  /** For status probes and setup calls (the workload has its own). */
  readonly agent: Agent = newAgent();
  private closed = false;

  private constructor(
    readonly members: readonly ChaosMember[],
    readonly options: ChaosClusterOptions,
  ) {}

  /** Opens the proxies and starts every member; waits until all are ready. Closes what it opened on failure. */
  static async start(options: ChaosClusterOptions): Promise<ChaosCluster> {
    const members: ChaosMember[] = [];
    const placeholders: { name: string; clientPort: number; peerPort: number; proxy: FaultProxy }[] = [];
    const flaky = (): number => options.random.float();
    let cluster: ChaosCluster | undefined;
    try {
      for (let i = 0; i < options.size; i++) {
        const peerPort = await freePort();
        const proxy = await FaultProxy.start({ targetPort: peerPort, listenPort: 0, random: flaky });
        placeholders.push({ name: `n${i + 1}`, clientPort: await freePort(), peerPort, proxy });
      }
      const initialCluster = placeholders.map((p) => `${p.name}=http://127.0.0.1:${p.proxy.port}`).join(',');
      for (const p of placeholders) {
        const proxyUrl = `http://127.0.0.1:${p.proxy.port}`;
        const dataDir = join(options.dir, p.name);
        await mkdir(dataDir, { recursive: true });
        const args = [
          'serve',
          '--name', p.name,
          '--data-dir', dataDir,
          '--listen-client-urls', `http://127.0.0.1:${p.clientPort}`,
          '--listen-peer-urls', `http://127.0.0.1:${p.peerPort}`,
          '--initial-advertise-peer-urls', proxyUrl,
          '--initial-cluster', initialCluster,
          '--initial-cluster-token', TOKEN,
          '--heartbeat-interval', String(options.heartbeatIntervalMs ?? 50),
          '--election-timeout', String(options.electionTimeoutMs ?? 500),
          '--snapshot-count', String(options.snapshotCount ?? 200),
          '--log-level', options.logLevel ?? 'warn',
        ];
        const process = new MemberProcess(p.name, () => args, (exit) => options.onExit?.(p.name, exit));
        members.push({ name: p.name, id: memberIdFor([proxyUrl], TOKEN), clientUrl: `http://127.0.0.1:${p.clientPort}`, proxyUrl, dataDir, proxy: p.proxy, process });
      }
      cluster = new ChaosCluster(members, options);
      for (const m of members) m.process.start();
      // Well inside a test's own timeout, so that the catch below closes what started:
      // waiting as long as the test ran into its timeout and left the members running.
      await cluster.waitAllReady(30_000, { starting: true });
      await cluster.checkMemberIds();
      return cluster;
    } catch (error) {
      if (cluster) await cluster.close();
      else await Promise.all(placeholders.map((p) => p.proxy.close()));
      throw error;
    }
  }

  member(name: string): ChaosMember {
    const m = this.members.find((x) => x.name === name);
    if (!m) throw new RangeError(`no member ${name}`);
    return m;
  }

  byId(id: string): ChaosMember | undefined {
    return this.members.find((m) => m.id === id);
  }

  // ---- network ------------------------------------------------------------------------------

  /** Sets the fault of the directed link from → to. */
  setLink(from: ChaosMember, to: ChaosMember, fault: LinkFault): void {
    if (from !== to) to.proxy.setFault(from.id, fault);
  }

  /** Members in different groups cannot reach each other, both ways; links inside a group are untouched. */
  partition(groups: readonly (readonly ChaosMember[])[], fault: LinkFault = { kind: 'drop' }): void {
    for (const a of groups) for (const b of groups) if (a !== b) for (const x of a) for (const y of b) this.setLink(x, y, fault);
  }

  heal(): void {
    for (const m of this.members) m.proxy.heal();
  }

  linkFault(from: ChaosMember, to: ChaosMember): LinkFault {
    return from === to ? NO_FAULT : to.proxy.fault(from.id);
  }

  // ---- processes -------------------------------------------------------------------------

  /** Resumes paused members and starts stopped ones. */
  restoreProcesses(): void {
    for (const m of this.members) {
      if (m.process.paused) m.process.resume();
      if (!m.process.running) m.process.start();
    }
  }

  /** The member that a majority of the running members' status names as leader, if any. */
  async leader(): Promise<ChaosMember | undefined> {
    const votes = new Map<string, number>();
    const answers = await Promise.all(
      this.members.filter((m) => m.process.running && !m.process.paused).map((m) => probe(`${m.clientUrl}/v1/status`, { timeoutMs: 1000, agent: this.agent })),
    );
    for (const a of answers) {
      const lead = a?.status === 200 ? (a.body.leaderId as string | null) : null;
      if (lead) votes.set(lead, (votes.get(lead) ?? 0) + 1);
    }
    const quorum = Math.floor(this.members.length / 2) + 1;
    for (const [id, count] of votes) if (count >= quorum || (count >= 1 && votes.size === 1)) return this.byId(id);
    return undefined;
  }

  async isReady(m: ChaosMember): Promise<boolean> {
    const answer = await probe(`${m.clientUrl}/readyz`, { timeoutMs: 1000, agent: this.agent });
    return answer?.status === 200;
  }

  /**
   * Waits until every running member answers /readyz with 200 (has a leader, caught up).
   * `starting`: a member that exits meanwhile fails the wait at once, with its output (a
   * port taken by another test between freePort() and the bind, say), rather than at the
   * deadline.
   */
  async waitAllReady(timeoutMs: number, options: { starting?: boolean } = {}): Promise<void> {
    await pollUntil(`every member ready`, timeoutMs, async () => {
      const gone = options.starting ? this.members.find((m) => !m.process.running) : undefined;
      if (gone) throw new Error(`member ${gone.name} exited while the cluster started; its last output:\n${gone.process.tail(20)}`);
      const ready = await Promise.all(this.members.map((m) => this.isReady(m)));
      return ready.every(Boolean) ? true : undefined;
    });
  }

  /** The ids cairn reports must be the ones the proxies fault by. */
  private async checkMemberIds(): Promise<void> {
    const answer = await probe(`${this.members[0].clientUrl}/v1/members`, { timeoutMs: 5000, agent: this.agent });
    const listed = (answer?.body.members as { id: string; peerUrls: string[] }[] | undefined) ?? [];
    for (const m of this.members) {
      const found = listed.find((x) => x.peerUrls.includes(m.proxyUrl));
      if (found?.id !== m.id) throw new Error(`member ${m.name}: cairn lists id ${found?.id} for ${m.proxyUrl}, the test derived ${m.id}`);
    }
  }

  /**
   * Kills every member by pid, closes the proxies, drops the client connections (a
   * request still open to a killed member has nothing to wait for). Safe to call twice;
   * a step that does not finish within 10 s fails with its name instead of hanging.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await bounded('the members to exit after SIGKILL', Promise.all(this.members.map((m) => m.process.kill('SIGKILL'))));
    await bounded('the fault proxies to close', Promise.all(this.members.map((m) => m.proxy.close())));
    await bounded('the client connections to close', this.agent.destroy());
  }

  /** The last lines of every member's output. */
  tails(lines = 30): string {
    return this.members.map((m) => m.process.tail(lines)).join('\n');
  }
}

async function bounded(what: string, work: Promise<unknown>, limitMs = 10_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`chaos cluster close: timed out after ${limitMs} ms waiting for ${what}`)), limitMs);
  });
  try {
    await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` until it returns a value, or throws at the deadline. */
export async function pollUntil<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

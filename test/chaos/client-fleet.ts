// Everything that talks to a cluster during a chaos run: the linearizability
// clients, the transaction writer, the reconnecting watchers, and their
// connection pools. One close() stops them all, whatever state the run is in.

import type { Agent } from 'undici';
import { newAgent } from './http.js';
import { MultiWriter } from './multi-writer.js';
import type { Random } from './random.js';
import { Watcher } from './watcher.js';
import { Workload, type WorkloadTarget } from './workload.js';

export interface FleetOptions {
  readonly clients: number;
  readonly keySlots: number;
  readonly opsPerKey: number;
  /** One watcher per prefix. */
  readonly watchPrefixes: readonly string[];
  /** Watchers (by position) whose connections live long enough to get progress notices (every 10 s). */
  readonly longLivedWatchers: readonly number[];
  readonly random: Random;
  /** Makes values unique to the run. */
  readonly tag: string;
}

const REQUEST_TIMEOUT_MS = 2500;

export class ClientFleet {
  readonly workload: Workload;
  readonly writer: MultiWriter;
  readonly watchers: readonly Watcher[];
  private readonly agent: Agent = newAgent();
  /** Watches hold their connections long: a pool of their own keeps them from starving requests. */
  private readonly watchAgent: Agent = newAgent();
  private writing: Promise<unknown> = Promise.resolve();
  private watching: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(targets: () => readonly WorkloadTarget[], options: FleetOptions) {
    const { random, tag } = options;
    this.workload = new Workload(targets, {
      clients: options.clients,
      keySlots: options.keySlots,
      opsPerKey: options.opsPerKey,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      agent: this.agent,
      random: random.fork('workload'),
      prefix: 'lin/',
      tag,
    });
    this.writer = new MultiWriter(targets, { prefix: 'multi/', keyCount: 5, requestTimeoutMs: REQUEST_TIMEOUT_MS, agent: this.agent, random: random.fork('multi'), tag });
    this.watchers = options.watchPrefixes.map((prefix, i) => {
      const lifetimeMs: [number, number] = options.longLivedWatchers.includes(i) ? [12_000, 25_000] : [1000, 6000];
      return new Watcher(targets, { name: `watcher ${i} (prefix "${prefix}")`, prefix, startRevision: 1, agent: this.watchAgent, random: random.fork(`watcher-${i}`), idleMs: 3000, lifetimeMs });
    });
  }

  start(): void {
    this.writing = Promise.all([this.workload.run(), this.writer.run()]);
    this.watching = Promise.all(this.watchers.map((w) => w.run()));
  }

  /** Stops the clients and the writer; resolves once their last requests ended (each is bounded by its deadline). */
  async stopWriting(): Promise<void> {
    this.workload.stop();
    this.writer.stop();
    await this.writing;
  }

  /** Stops everything, closes the pools. Safe at any point, and twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.stopWriting();
    for (const w of this.watchers) w.stop();
    await this.watching;
    await this.agent.close();
    await this.watchAgent.close();
  }

  /** Writes of the clients and of the writer, for the nothing-lost check. */
  get acknowledgedWrites(): number {
    return [...this.workload.writes, ...this.writer.writes].filter((w) => w.outcome === 'ok').length;
  }
}

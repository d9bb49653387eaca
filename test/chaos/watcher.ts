// A watcher that lives through faults: it watches one prefix with prevKv, through
// a member picked at random, and moves to another member (resuming with
// Last-Event-ID) when its stream breaks, goes silent, or at random moments of
// its own. It records everything it received, per connection, for the checks.

import type { Agent } from 'undici';
import type { Random } from './random.js';
import { readWatch, type WatchKv } from './sse-reader.js';
import type { WorkloadTarget } from './workload.js';

export interface WatchedEvent {
  readonly connection: number;
  readonly revision: number;
  readonly type: 'put' | 'delete';
  readonly kv: WatchKv;
  readonly prevKv?: WatchKv;
}

export interface WatchConnection {
  readonly index: number;
  readonly member: string;
  /** The last revision delivered before this connection opened (0: none yet). */
  readonly resumeAfter: number;
  events: number;
  endedBy: string;
}

export interface WatchedProgress {
  readonly connection: number;
  readonly revision: number;
  /** The last event revision delivered before it (on any connection). */
  readonly afterRevision: number;
}

export interface WatcherOptions {
  readonly name: string;
  readonly prefix: string;
  /** First revision the watcher asks for. */
  readonly startRevision: number;
  readonly agent: Agent;
  readonly random: Random;
  /** A stream silent this long is abandoned (a paused or cut-off member). */
  readonly idleMs: number;
  /** A connection is dropped by the watcher itself after a random time in this range. */
  readonly lifetimeMs: readonly [number, number];
}

export class Watcher {
  readonly events: WatchedEvent[] = [];
  readonly progress: WatchedProgress[] = [];
  readonly connections: WatchConnection[] = [];
  /** Notices that should never come in these runs (compacted). */
  readonly oddities: string[] = [];
  private stopped = false;
  private readonly stopController = new AbortController();

  constructor(
    private readonly targets: () => readonly WorkloadTarget[],
    readonly options: WatcherOptions,
  ) {}

  get name(): string {
    return this.options.name;
  }

  /** The revision of the last event delivered (0: none). */
  get lastRevision(): number {
    return this.events.length === 0 ? 0 : this.events[this.events.length - 1].revision;
  }

  stop(): void {
    this.stopped = true;
    this.stopController.abort();
  }

  async run(): Promise<void> {
    const { random } = this.options;
    while (!this.stopped) {
      await this.connectOnce(random.pick(this.targets()));
      if (!this.stopped) await new Promise((resolve) => setTimeout(resolve, random.int(20, 150)));
    }
  }

  private async connectOnce(target: WorkloadTarget): Promise<void> {
    const { random } = this.options;
    const resumeAfter = this.lastRevision;
    const connection: WatchConnection = { index: this.connections.length, member: target.name, resumeAfter, events: 0, endedBy: 'stream ended' };
    this.connections.push(connection);
    const controller = new AbortController();
    const onStop = (): void => controller.abort();
    this.stopController.signal.addEventListener('abort', onStop, { once: true });
    let reason = '';
    const lifetime = setTimeout(() => {
      reason = 'rotated by the watcher';
      controller.abort();
    }, random.int(this.options.lifetimeMs[0], this.options.lifetimeMs[1]));
    let idle: NodeJS.Timeout | undefined;
    const touch = (): void => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        reason = 'silent stream abandoned';
        controller.abort();
      }, this.options.idleMs);
    };
    touch();
    try {
      const stream = readWatch({
        clientUrl: target.clientUrl,
        prefix: this.options.prefix,
        prevKv: true,
        ...(resumeAfter === 0 ? { startRevision: this.options.startRevision } : { lastEventId: resumeAfter }),
        agent: this.options.agent,
        signal: controller.signal,
        connectTimeoutMs: this.options.idleMs,
      });
      for await (const notice of stream) {
        touch();
        if (notice.kind === 'put' || notice.kind === 'delete') {
          connection.events++;
          this.events.push({ connection: connection.index, revision: notice.revision, type: notice.kind, kv: notice.kv, ...(notice.prevKv ? { prevKv: notice.prevKv } : {}) });
        } else if (notice.kind === 'progress') {
          this.progress.push({ connection: connection.index, revision: notice.revision, afterRevision: this.lastRevision });
        } else if (notice.kind === 'compacted') {
          this.oddities.push(`${this.name}: compacted at ${notice.compactRevision} on ${target.name}, but nothing compacts in this run`);
          connection.endedBy = 'compacted';
        } else if (notice.kind === 'closed') {
          connection.endedBy = `closed: ${notice.reason}`;
        }
      }
    } catch (error) {
      connection.endedBy = reason || (this.stopped ? 'stopped' : `error: ${(error as Error).message}`);
    } finally {
      clearTimeout(lifetime);
      clearTimeout(idle);
      this.stopController.signal.removeEventListener('abort', onStop);
    }
  }

  /** Waits (polling, bounded) until the watcher delivered `revision` or later. */
  async waitFor(revision: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.lastRevision < revision) {
      if (Date.now() > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return true;
  }
}

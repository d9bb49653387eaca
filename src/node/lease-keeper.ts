import type { KvResult } from '../kv/kv-commands.js';
import type { MvccStore } from '../kv/mvcc.js';

/**
 * Lease deadlines. Apply never reads the clock, so expiry is decided here: every
 * member restarts a lease's deadline when it applies its grant or a keep-alive,
 * and only the leader acts, by proposing a revoke once a deadline passes. A new
 * leader restarts every deadline (it cannot know how long the old one waited),
 * as etcd does.
 */
export class LeaseKeeper {
  private readonly deadlines = new Map<number, number>();
  /** Leases whose revoke was proposed, and when to try again if it did not apply. */
  private readonly revoking = new Map<number, number>();
  private leader = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly store: MvccStore,
    private readonly proposeRevoke: (id: number) => void,
    private readonly now: () => number = Date.now,
    checkIntervalMs = 250,
  ) {
    this.timer = setInterval(() => this.expire(), checkIntervalMs);
    this.timer.unref();
  }

  /** Call with the results of every applied batch, in order. */
  onApplied(results: readonly (KvResult | undefined)[]): void {
    for (const r of results) {
      if (!r || 'error' in r) continue;
      if (r.op === 'leaseGrant' || r.op === 'leaseKeepAlive') this.deadlines.set(r.id, this.now() + r.ttlSeconds * 1000);
    }
    for (const id of this.deadlines.keys()) {
      if (!this.store.leaseInfo(id)) {
        this.deadlines.delete(id);
        this.revoking.delete(id);
      }
    }
  }

  onLeadership(isLeader: boolean): void {
    if (isLeader && !this.leader) {
      const now = this.now();
      for (const id of this.store.leaseIds()) this.deadlines.set(id, now + this.store.leaseInfo(id)!.ttlSeconds * 1000);
      this.revoking.clear();
    }
    this.leader = isLeader;
  }

  /** Seconds left on a lease as this member knows it (-1: no such lease). */
  remainingSeconds(id: number): number {
    const info = this.store.leaseInfo(id);
    if (!info) return -1;
    const deadline = this.deadlines.get(id);
    if (deadline === undefined) return info.ttlSeconds;
    return Math.max(0, Math.ceil((deadline - this.now()) / 1000));
  }

  private expire(): void {
    if (!this.leader) return;
    const now = this.now();
    let proposed = 0;
    for (const [id, deadline] of this.deadlines) {
      if (deadline > now) continue;
      const retryAt = this.revoking.get(id);
      if (retryAt !== undefined && retryAt > now) continue;
      this.revoking.set(id, now + 1000);
      this.proposeRevoke(id);
      // Bounded work per check: the rest go on the next one.
      if (++proposed >= 1000) break;
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}

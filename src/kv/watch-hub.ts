import { prefixEnd, type KeyValue } from './kv-commands.js';
import type { KvEvent, MvccStore, RevisionEvents } from './mvcc.js';

export type WatchNotice =
  | { readonly kind: 'events'; readonly revision: number; readonly events: readonly KvEvent[] }
  | { readonly kind: 'progress'; readonly revision: number }
  | { readonly kind: 'compacted'; readonly compactRevision: number }
  | { readonly kind: 'closed'; readonly reason: string };

export interface WatchSpec {
  readonly key: Uint8Array;
  readonly prefix: boolean;
  /** First revision to deliver; 0 or absent: changes after now. */
  readonly startRevision?: number;
  readonly prevKv?: boolean;
}

export interface WatchHubOptions {
  /** Watches open at once on this member. Default 10000. */
  readonly maxWatchers?: number;
  /** Notices queued per watcher; past it the watcher catches up from history instead. Default 256. */
  readonly maxQueuedNotices?: number;
  /** Revisions read from history per catch-up step. Default 100. */
  readonly catchUpRevisions?: number;
  /** How often idle watchers get a progress notice. Default 10000 ms. */
  readonly progressIntervalMs?: number;
}

interface Watcher {
  readonly match: (key: Uint8Array) => boolean;
  readonly prevKv: boolean;
  /** Next revision to deliver: everything before it was delivered (or did not match). */
  next: number;
  /** Every revision up to here is delivered or queued; after an overflow it stops advancing. */
  coveredThrough: number;
  queue: WatchNotice[];
  overflowed: boolean;
  closedReason: string | undefined;
  wake: (() => void) | undefined;
}

function matcher(spec: WatchSpec): (key: Uint8Array) => boolean {
  if (!spec.prefix) return (key) => Buffer.compare(key, spec.key) === 0;
  const end = prefixEnd(spec.key);
  return (key) => Buffer.compare(key, spec.key) >= 0 && (end === undefined || Buffer.compare(key, end) < 0);
}

function withoutPrev(events: readonly KvEvent[]): KvEvent[] {
  return events.map((e) => ({ type: e.type, kv: e.kv }));
}

/**
 * Delivers each applied revision to the watchers whose keys it touches, in
 * revision order, exactly once. A watcher that starts in the past, or falls
 * behind (its queue is full), reads from the store's history until it is
 * current; one whose history was compacted away is told so and ends.
 */
export class WatchHub {
  private readonly watchers = new Set<Watcher>();
  private readonly maxWatchers: number;
  private readonly maxQueued: number;
  private readonly catchUp: number;
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly store: MvccStore,
    options: WatchHubOptions = {},
  ) {
    this.maxWatchers = options.maxWatchers ?? 10000;
    this.maxQueued = options.maxQueuedNotices ?? 256;
    this.catchUp = options.catchUpRevisions ?? 100;
    store.onRevisions = (batch) => this.publish(batch);
    store.onRestored = () => this.onRestored();
    this.timer = setInterval(() => this.requestProgress(), options.progressIntervalMs ?? 10000);
    this.timer.unref();
  }

  get size(): number {
    return this.watchers.size;
  }

  private publish(batch: readonly RevisionEvents[]): void {
    for (const w of this.watchers) {
      for (const { revision, events } of batch) {
        if (w.overflowed || revision <= w.coveredThrough) continue;
        if (revision > w.coveredThrough + 1) {
          // Revisions this watcher never saw published (a restored snapshot jumped over them): read them from history.
          w.overflowed = true;
          continue;
        }
        const matching = events.filter((e) => w.match(e.kv.key));
        if (matching.length > 0) {
          if (w.queue.length >= this.maxQueued) {
            w.overflowed = true;
            continue;
          }
          w.queue.push({ kind: 'events', revision, events: w.prevKv ? matching : withoutPrev(matching) });
        }
        w.coveredThrough = revision;
      }
      w.wake?.();
    }
  }

  /** The store was replaced by a snapshot: every watcher reads what it jumped over from history. */
  private onRestored(): void {
    for (const w of this.watchers) {
      w.queue = [];
      w.coveredThrough = Math.min(w.coveredThrough, w.next - 1);
      w.overflowed = true;
      w.wake?.();
    }
  }

  /** Sends a progress notice to every watcher that is idle and current. */
  requestProgress(): void {
    const revision = this.store.revision;
    for (const w of this.watchers) {
      // Only a watcher this member has caught up with: one resumed past this member's revision must not hear of an older one.
      if (w.queue.length === 0 && !w.overflowed && w.coveredThrough >= revision && w.next <= revision + 1) {
        w.queue.push({ kind: 'progress', revision });
        w.wake?.();
      }
    }
  }

  watch(spec: WatchSpec, signal: AbortSignal): AsyncIterable<WatchNotice> {
    return this.run(spec, signal);
  }

  private async *run(spec: WatchSpec, signal: AbortSignal): AsyncGenerator<WatchNotice> {
    if (this.closed) return yield { kind: 'closed', reason: 'member is shutting down' };
    if (this.watchers.size >= this.maxWatchers) return yield { kind: 'closed', reason: `too many watchers (${this.maxWatchers})` };
    const start = spec.startRevision && spec.startRevision > 0 ? spec.startRevision : this.store.revision + 1;
    if (start < this.store.compactRevision) return yield { kind: 'compacted', compactRevision: this.store.compactRevision };
    const w: Watcher = {
      match: matcher(spec),
      prevKv: spec.prevKv === true,
      next: start,
      coveredThrough: start - 1,
      queue: [],
      overflowed: false,
      closedReason: undefined,
      wake: undefined,
    };
    this.watchers.add(w);
    const onAbort = (): void => {
      w.closedReason = 'aborted';
      w.wake?.();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      for (;;) {
        if (w.closedReason !== undefined) {
          if (w.closedReason !== 'aborted') yield { kind: 'closed', reason: w.closedReason };
          return;
        }
        const notice = w.queue.shift();
        if (notice) {
          if (notice.kind === 'events') {
            if (notice.revision < w.next) continue; // already delivered from history
            w.next = notice.revision + 1;
          }
          yield notice;
          continue;
        }
        if (w.overflowed || w.coveredThrough < this.store.revision) {
          if (w.next < this.store.compactRevision) {
            yield { kind: 'compacted', compactRevision: this.store.compactRevision };
            return;
          }
          yield* this.catchUpFromHistory(w);
          continue;
        }
        await new Promise<void>((resolve) => {
          w.wake = resolve;
        });
        w.wake = undefined;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.watchers.delete(w);
    }
  }

  private async *catchUpFromHistory(w: Watcher): AsyncGenerator<WatchNotice> {
    const to = this.store.revision;
    // Live revisions published from here on are queued again; duplicates are skipped by `next`.
    w.overflowed = false;
    w.queue = [];
    w.coveredThrough = to;
    const batch = await this.store.history(w.next, to, w.match, w.prevKv, this.catchUp);
    for (const { revision, events } of batch) {
      if (revision < w.next) continue;
      w.next = revision + 1;
      yield { kind: 'events', revision, events: w.prevKv ? events : withoutPrev(events) };
    }
    if (batch.length < this.catchUp) {
      w.next = Math.max(w.next, to + 1);
    } else {
      // More history to read: look again from where this batch ended. Live notices queued
      // meanwhile come after that history, so they must not be delivered before it.
      w.queue = [];
      w.coveredThrough = w.next - 1;
      w.overflowed = true;
    }
  }

  /** Ends every watch with a reason. */
  close(reason = 'member is shutting down'): void {
    this.closed = true;
    clearInterval(this.timer);
    for (const w of this.watchers) {
      w.closedReason = reason;
      w.wake?.();
    }
  }
}

export type { KeyValue };

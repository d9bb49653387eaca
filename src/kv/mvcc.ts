import { Packr } from 'msgpackr';
import { sublevel, type BatchOp, type MemberDb, type SubDb } from '../storage/member-db.js';
import { compactHistoryBelow, encodeRow, readAt, readHistory, revKey, type HistoryEvent, type HistoryRevision, type HistRow } from './history.js';
import { imageBatch, imageFrames } from './mvcc-image.js';
import {
  decodeCommand,
  isFailure,
  prefixEnd,
  type Compare,
  type KeyValue,
  type KvCommand,
  type KvResult,
  type TxnOp,
  type TxnOpResult,
} from './kv-commands.js';

const packr = new Packr({ useRecords: false });
const STATE_KEY = new TextEncoder().encode('state');

/** One change of one key, as watchers see it. A delete's kv has the key and the deletion's modRevision. */
export type KvEvent = HistoryEvent;
/** All changes of one revision. */
export type RevisionEvents = HistoryRevision;

interface Live extends KeyValue {
  /** Position of this version in the history: (modRevision, sub). */
  readonly sub: number;
}

const id = (key: Uint8Array): string => Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
const compareBytes = (a: Uint8Array, b: Uint8Array): number => Buffer.compare(a, b);

function inRange(key: Uint8Array, start: Uint8Array, end: Uint8Array | undefined, single: boolean): boolean {
  if (single) return compareBytes(key, start) === 0;
  return compareBytes(key, start) >= 0 && (end === undefined || compareBytes(key, end) < 0);
}

function publicKv(l: Live): KeyValue {
  return { key: l.key, value: l.value, createRevision: l.createRevision, modRevision: l.modRevision, version: l.version, lease: l.lease };
}

/** One write transaction in progress: everything it changes goes into `ops` and `events` at one revision. */
interface TxnContext {
  readonly revision: number;
  sub: number;
  readonly ops: BatchOp[];
  readonly events: KvEvent[];
}

export interface RangeQuery {
  readonly key: Uint8Array;
  readonly prefix?: boolean;
  readonly revision?: number;
  readonly limit?: number;
  readonly keysOnly?: boolean;
  readonly countOnly?: boolean;
}

export interface RangeResult {
  readonly revision: number;
  readonly kvs: readonly KeyValue[];
  readonly count: number;
  readonly more: boolean;
}

/**
 * cairn's MVCC key-value state machine, like etcd's: one revision per write
 * transaction, per-key createRevision/modRevision/version/lease, history kept by
 * revision until compaction. The current keys live in memory too (point reads
 * and apply never touch the disk); history and ranges are LevelDB scans.
 * apply() is deterministic and writes one batch per call.
 */
export class MvccStore {
  appliedIndex = 0;
  revision = 0;
  compactRevision = 0;
  /** Called after each applied batch with its revisions' events, in order (the watch hub). */
  onRevisions: ((batch: readonly RevisionEvents[]) => void) | undefined;
  /** Called after restore() replaced the whole store (the watch hub: its watchers must catch up from history). */
  onRestored: (() => void) | undefined;
  private readonly live = new Map<string, Live>();
  private readonly leases = new Map<number, { ttlSeconds: number; keys: Set<string> }>();
  private readonly liveSection: SubDb;
  private readonly histSection: SubDb;
  private readonly metaSection: SubDb;
  private readonly leaseSection: SubDb;
  private applying: Promise<unknown> = Promise.resolve();
  /** Apply batches decided (revision and memory moved) but not yet written. */
  private unwrittenBatches = 0;
  /** Scans waiting for unwrittenBatches to reach 0; bounded by the reads in flight. */
  private readonly waitingScans: (() => void)[] = [];
  /** Set while restore() replaces everything: reads wait for it rather than see half an image. */
  private restoring: Promise<void> | undefined;
  private compacting: Promise<void> = Promise.resolve();

  /** Other sections of the member's database that travel in snapshots with the store (the member list). */
  private readonly carried: Array<[string, SubDb]>;

  private constructor(
    private readonly db: MemberDb,
    carrySections: readonly string[],
  ) {
    this.carried = carrySections.map((name) => [`carry:${name}`, sublevel(db, name)]);
    this.liveSection = sublevel(db, 'kv-live');
    this.histSection = sublevel(db, 'kv-hist');
    this.metaSection = sublevel(db, 'kv-meta');
    this.leaseSection = sublevel(db, 'kv-lease');
  }

  static async open(db: MemberDb, options: { readonly carrySections?: readonly string[] } = {}): Promise<MvccStore> {
    const store = new MvccStore(db, options.carrySections ?? []);
    await store.load();
    return store;
  }

  private async load(): Promise<void> {
    this.live.clear();
    this.leases.clear();
    const state = await this.metaSection.get(STATE_KEY);
    if (state) Object.assign(this, packr.unpack(state) as { appliedIndex: number; revision: number; compactRevision: number });
    else Object.assign(this, { appliedIndex: 0, revision: 0, compactRevision: 0 });
    for await (const [k, v] of this.leaseSection.iterator()) {
      this.leases.set(Number(new DataView(k.buffer, k.byteOffset, 8).getBigUint64(0)), { ttlSeconds: packr.unpack(v) as number, keys: new Set() });
    }
    for await (const [key, v] of this.liveSection.iterator()) {
      const [value, createRevision, modRevision, version, lease, sub] = packr.unpack(v) as [Uint8Array, number, number, number, number, number];
      const l: Live = { key, value, createRevision, modRevision, version, lease, sub };
      this.live.set(id(key), l);
      if (lease) this.leases.get(lease)?.keys.add(id(key));
    }
    if (this.compactRevision > 0) this.compactHistory(this.compactRevision);
  }

  private stateOp(): BatchOp {
    const value = packr.pack({ appliedIndex: this.appliedIndex, revision: this.revision, compactRevision: this.compactRevision });
    return { type: 'put', sublevel: this.metaSection, key: STATE_KEY, value };
  }

  // ---- apply ---------------------------------------------------------------------------------

  /**
   * Applies entries in log order in ONE batch (with the caller's extra operations and
   * the new applied index). Entries at or below appliedIndex are skipped (a replay).
   * Returns one result per entry (undefined for entries without a command or skipped).
   */
  apply(
    entries: readonly { readonly index: number; readonly command?: Uint8Array }[],
    extraOps: BatchOp[] = [],
    onResults?: (results: readonly (KvResult | undefined)[]) => void,
  ): Promise<(KvResult | undefined)[]> {
    const run = this.applying.then(() => this.applyNow(entries, extraOps, onResults));
    this.applying = run.catch(() => undefined);
    return run;
  }

  /**
   * `onResults` hears the results as soon as they are decided, before the batch is
   * written: they are final, since a crash before the write replays the same
   * committed entries to the same results. Reads that scan LevelDB wait for the
   * batch (see settled()).
   */
  private async applyNow(
    entries: readonly { readonly index: number; readonly command?: Uint8Array }[],
    extraOps: BatchOp[],
    onResults: ((results: readonly (KvResult | undefined)[]) => void) | undefined,
  ) {
    const ops: BatchOp[] = [...extraOps];
    const results: (KvResult | undefined)[] = [];
    const published: RevisionEvents[] = [];
    let compactTo = 0;
    for (const entry of entries) {
      if (entry.index <= this.appliedIndex) {
        results.push(undefined);
        continue;
      }
      this.appliedIndex = entry.index;
      if (!entry.command) {
        results.push(undefined);
        continue;
      }
      let command: KvCommand;
      try {
        command = decodeCommand(entry.command);
      } catch (err) {
        results.push({ error: 'InvalidArgument', message: (err as Error).message, revision: this.revision });
        continue;
      }
      const ctx: TxnContext = { revision: this.revision + 1, sub: 0, ops, events: [] };
      const result = this.execute(command, ctx);
      if (ctx.sub > 0) {
        // Keys changed: the transaction takes the next revision (lease grants, compactions and
        // transactions that only read do not, as in etcd).
        this.revision = ctx.revision;
        published.push({ revision: ctx.revision, events: ctx.events });
      }
      if (command.op === 'compact' && !isFailure(result)) compactTo = command.revision;
      results.push(result);
    }
    ops.push(this.stateOp());
    this.unwrittenBatches++;
    try {
      if (onResults) {
        onResults(results);
        // Let the answers go out before building the batch, which costs the loop a little.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      await this.db.batch(ops);
    } finally {
      this.unwrittenBatches--;
      if (this.unwrittenBatches === 0) for (const start of this.waitingScans.splice(0)) start();
    }
    if (published.length > 0) this.onRevisions?.(published);
    if (compactTo > 0) this.compactHistory(compactTo);
    return results;
  }

  private execute(c: KvCommand, ctx: TxnContext): KvResult {
    const failure = (error: 'CompareFailed' | 'Compacted' | 'InvalidArgument' | 'KeyNotFound', message: string, extra = {}): KvResult => ({
      error,
      message,
      revision: this.revision,
      ...extra,
    });
    switch (c.op) {
      case 'put': {
        const current = this.live.get(id(c.key));
        if (c.ifVersion !== undefined && (current?.version ?? 0) !== c.ifVersion) {
          return failure('CompareFailed', `version of the key is ${current?.version ?? 0}, not ${c.ifVersion}`, current ? { kv: publicKv(current) } : {});
        }
        if (c.ifModRevision !== undefined && (current?.modRevision ?? 0) !== c.ifModRevision) {
          return failure('CompareFailed', `modRevision of the key is ${current?.modRevision ?? 0}, not ${c.ifModRevision}`, current ? { kv: publicKv(current) } : {});
        }
        if (c.lease && !this.leases.has(c.lease)) return failure('KeyNotFound', `lease ${c.lease} not found`);
        this.putKey(ctx, c.key, c.value, c.lease ?? 0);
        return { op: 'put', revision: ctx.revision, ...(c.prevKv && current ? { prevKv: publicKv(current) } : {}) };
      }
      case 'delete': {
        if (c.ifModRevision !== undefined) {
          const current = this.live.get(id(c.key));
          if ((current?.modRevision ?? 0) !== c.ifModRevision) {
            return failure('CompareFailed', `modRevision of the key is ${current?.modRevision ?? 0}, not ${c.ifModRevision}`, current ? { kv: publicKv(current) } : {});
          }
        }
        const prev = this.deleteRange(ctx, c.key, c.prefix === true);
        return { op: 'delete', revision: ctx.sub > 0 ? ctx.revision : this.revision, deleted: prev.length, ...(c.prevKv ? { prevKvs: prev } : {}) };
      }
      case 'txn': {
        const succeeded = c.compare.every((cmp) => this.compareHolds(cmp));
        const chosen = succeeded ? c.success : c.failure;
        // As etcd: a put naming a lease that does not exist fails the whole transaction, before anything changes.
        const missing = chosen.find((op) => 'put' in op && op.put.lease && !this.leases.has(op.put.lease));
        if (missing && 'put' in missing) return failure('KeyNotFound', `lease ${missing.put.lease} not found`);
        const responses: TxnOpResult[] = [];
        for (const op of chosen) responses.push(this.txnOp(ctx, op));
        return { op: 'txn', revision: ctx.sub > 0 ? ctx.revision : this.revision, succeeded, responses };
      }
      case 'compact':
        if (c.revision > this.revision) return failure('InvalidArgument', `revision ${c.revision} is in the future (current ${this.revision})`);
        if (c.revision <= this.compactRevision) return failure('Compacted', `revision ${c.revision} is already compacted`, { compactRevision: this.compactRevision });
        this.compactRevision = c.revision;
        return { op: 'compact', revision: this.revision };
      case 'leaseGrant': {
        if (c.id === 0 || this.leases.has(c.id)) return failure('InvalidArgument', `lease ${c.id} already exists`);
        this.leases.set(c.id, { ttlSeconds: c.ttlSeconds, keys: new Set() });
        ctx.ops.push({ type: 'put', sublevel: this.leaseSection, key: leaseKey(c.id), value: packr.pack(c.ttlSeconds) });
        return { op: 'leaseGrant', revision: this.revision, id: c.id, ttlSeconds: c.ttlSeconds };
      }
      case 'leaseKeepAlive': {
        const lease = this.leases.get(c.id);
        if (!lease) return failure('KeyNotFound', `lease ${c.id} not found`);
        return { op: 'leaseKeepAlive', revision: this.revision, id: c.id, ttlSeconds: lease.ttlSeconds };
      }
      case 'leaseRevoke': {
        const lease = this.leases.get(c.id);
        if (!lease) return failure('KeyNotFound', `lease ${c.id} not found`);
        for (const k of [...lease.keys].sort()) {
          const l = this.live.get(k);
          if (l) this.deleteRange(ctx, l.key, false);
        }
        this.leases.delete(c.id);
        ctx.ops.push({ type: 'del', sublevel: this.leaseSection, key: leaseKey(c.id) });
        return { op: 'leaseRevoke', revision: ctx.sub > 0 ? ctx.revision : this.revision };
      }
    }
  }

  private compareHolds(c: Compare): boolean {
    const l = this.live.get(id(c.key));
    let order: number;
    if (c.target === 'value') {
      if (!l) return false;
      order = compareBytes(l.value, c.value as Uint8Array);
    } else {
      const actual = l ? l[c.target] : 0;
      order = actual - (c.value as number);
    }
    switch (c.op) {
      case '=':
        return order === 0;
      case '!=':
        return order !== 0;
      case '<':
        return order < 0;
      case '>':
        return order > 0;
    }
  }

  private txnOp(ctx: TxnContext, op: TxnOp): TxnOpResult {
    if ('get' in op) {
      const kvs = this.currentRange(op.get.key, op.get.prefix === true);
      return { get: { kvs, count: kvs.length } };
    }
    if ('put' in op) {
      const prev = this.live.get(id(op.put.key));
      this.putKey(ctx, op.put.key, op.put.value, op.put.lease ?? 0);
      return { put: prev ? { prevKv: publicKv(prev) } : {} };
    }
    return { delete: { deleted: this.deleteRange(ctx, op.delete.key, op.delete.prefix === true).length } };
  }

  private putKey(ctx: TxnContext, key: Uint8Array, value: Uint8Array, lease: number): void {
    const k = id(key);
    const prev = this.live.get(k);
    const sub = ctx.sub++;
    const l: Live = {
      key: Uint8Array.from(key),
      value: Uint8Array.from(value),
      createRevision: prev ? prev.createRevision : ctx.revision,
      modRevision: ctx.revision,
      version: (prev?.version ?? 0) + 1,
      lease,
      sub,
    };
    if (prev?.lease) this.leases.get(prev.lease)?.keys.delete(k);
    if (lease) this.leases.get(lease)?.keys.add(k);
    this.live.set(k, l);
    ctx.ops.push({ type: 'put', sublevel: this.liveSection, key: l.key, value: packr.pack([l.value, l.createRevision, l.modRevision, l.version, l.lease, sub]) });
    const row: HistRow = [l.key, l.value, l.createRevision, l.modRevision, l.version, l.lease, 0, prev?.modRevision ?? 0, prev?.sub ?? 0];
    ctx.ops.push({ type: 'put', sublevel: this.histSection, key: revKey(ctx.revision, sub), value: encodeRow(row) });
    ctx.events.push({ type: 'put', kv: publicKv(l), ...(prev ? { prevKv: publicKv(prev) } : {}) });
  }

  /** Deletes one key or every key with the prefix; returns what was deleted, in key order. */
  private deleteRange(ctx: TxnContext, key: Uint8Array, prefix: boolean): KeyValue[] {
    const victims = prefix ? this.currentRange(key, true) : [this.live.get(id(key))].filter((l): l is Live => l !== undefined);
    for (const prev of victims as Live[]) {
      const k = id(prev.key);
      const old = this.live.get(k)!;
      this.live.delete(k);
      if (old.lease) this.leases.get(old.lease)?.keys.delete(k);
      const sub = ctx.sub++;
      ctx.ops.push({ type: 'del', sublevel: this.liveSection, key: old.key });
      const row: HistRow = [old.key, new Uint8Array(0), 0, ctx.revision, 0, 0, 1, old.modRevision, old.sub];
      ctx.ops.push({ type: 'put', sublevel: this.histSection, key: revKey(ctx.revision, sub), value: encodeRow(row) });
      const kv: KeyValue = { key: old.key, value: new Uint8Array(0), createRevision: 0, modRevision: ctx.revision, version: 0, lease: 0 };
      ctx.events.push({ type: 'delete', kv, prevKv: publicKv(old) });
    }
    return victims.map((v) => publicKv(v as Live));
  }

  /** Current keys of a range from memory, in key order (used inside transactions). */
  private currentRange(key: Uint8Array, prefix: boolean): Live[] {
    if (!prefix) {
      const l = this.live.get(id(key));
      return l ? [l] : [];
    }
    const end = prefixEnd(key);
    return [...this.live.values()].filter((l) => inRange(l.key, key, end, false)).sort((a, b) => compareBytes(a.key, b.key));
  }

  // ---- reads -------------------------------------------------------------------------------------

  /** The current version of a key, from memory. */
  get(key: Uint8Array): KeyValue | undefined {
    const l = this.live.get(id(key));
    return l ? publicKv(l) : undefined;
  }

  /**
   * A range at the current revision (a LevelDB scan in key order) or at a past one
   * (a scan of the history up to it). Throws RangeError('compacted'|'future') for
   * revisions that cannot be read; the caller maps them to API errors.
   */
  async range(q: RangeQuery): Promise<RangeResult> {
    if (this.restoring) await this.restoring;
    const scans = q.prefix === true || (q.revision !== undefined && q.revision > 0 && q.revision < this.revision);
    return scans ? this.whenWritten(() => this.rangeNow(q)) : this.rangeNow(q);
  }

  /**
   * Runs `start` at a moment when every applied revision is written, in the same
   * synchronous step: the iterators it opens (LevelDB iterators read a snapshot
   * taken when they open) see exactly the state of `this.revision`. The revision
   * and the in-memory keys move when a batch is decided, before it is written.
   */
  private whenWritten<T>(start: () => T): Promise<Awaited<T>> {
    if (this.unwrittenBatches === 0) return Promise.resolve(start()) as Promise<Awaited<T>>;
    return new Promise((resolve, reject) => {
      this.waitingScans.push(() => {
        try {
          resolve(start() as Awaited<T>);
        } catch (err) {
          reject(err);
        }
      });
    });
  }

  /** A range; every LevelDB iterator it needs opens before its first await. */
  private async rangeNow(q: RangeQuery): Promise<RangeResult> {
    const revision = this.revision;
    const limit = q.limit && q.limit > 0 ? q.limit : Infinity;
    const end = q.prefix ? prefixEnd(q.key) : undefined;
    let all: KeyValue[];
    if (q.revision && q.revision < revision) {
      if (q.revision < this.compactRevision) throw new RangeReadError('compacted', this.compactRevision);
      const single = q.prefix !== true;
      all = await readAt(this.histSection, q.revision, (key) => inRange(key, q.key, end, single));
    } else if (q.revision && q.revision > revision) {
      throw new RangeReadError('future', this.compactRevision);
    } else if (!q.prefix) {
      const l = this.live.get(id(q.key));
      all = l ? [publicKv(l)] : [];
    } else {
      all = [];
      const bounds = { gte: q.key, ...(end ? { lt: end } : {}) };
      for await (const [key, v] of this.liveSection.iterator(bounds)) {
        const [value, createRevision, modRevision, version, lease] = packr.unpack(v) as [Uint8Array, number, number, number, number];
        all.push({ key, value, createRevision, modRevision, version, lease });
      }
    }
    const kvs = q.countOnly ? [] : all.slice(0, limit).map((kv) => (q.keysOnly ? { ...kv, value: new Uint8Array(0) } : kv));
    return { revision: q.revision && q.revision < revision ? q.revision : revision, kvs, count: all.length, more: all.length > limit };
  }

  /**
   * Revisions [from, to] of the history touching the range, at most `maxRevisions`,
   * for watchers catching up.
   */
  async history(from: number, to: number, match: (key: Uint8Array) => boolean, withPrev: boolean, maxRevisions: number): Promise<RevisionEvents[]> {
    if (this.restoring) await this.restoring;
    return this.whenWritten(() => readHistory(this.histSection, from, to, match, withPrev, maxRevisions));
  }

  leaseIds(): number[] {
    return [...this.leases.keys()].sort((a, b) => a - b);
  }

  leaseInfo(leaseId: number): { ttlSeconds: number; keys: Uint8Array[] } | undefined {
    const lease = this.leases.get(leaseId);
    if (!lease) return undefined;
    return { ttlSeconds: lease.ttlSeconds, keys: [...lease.keys].sort().map((k) => Uint8Array.from(Buffer.from(k, 'latin1'))) };
  }

  /** A digest of the current keys and revision: equal on members that applied the same log. */
  hash(): string {
    let value = 0x811c9dc5;
    const add = (bytes: Uint8Array): void => {
      for (const b of bytes) value = Math.imul(value ^ b, 0x01000193) >>> 0;
    };
    for (const p of [...this.live.values()].sort((a, b) => compareBytes(a.key, b.key))) {
      add(p.key);
      add(p.value);
      add(new TextEncoder().encode(`${p.createRevision}/${p.modRevision}/${p.version}/${p.lease};`));
    }
    return `${this.revision}:${this.compactRevision}:${value.toString(16)}`;
  }

  // ---- compaction, snapshots -----------------------------------------------------------------------

  /** Drops history below `revision` in the background (bounded batches; see history.ts). */
  private compactHistory(revision: number): void {
    this.compacting = this.compacting.then(() => compactHistoryBelow(this.histSection, revision)).catch(() => undefined);
  }

  /** A consistent image of the store (and the carried sections): see mvcc-image.ts. */
  async *snapshot(): AsyncIterable<Uint8Array> {
    // State and iterators in one synchronous step, with every applied batch written.
    const [state, iterators] = await this.whenWritten(() => [
      { appliedIndex: this.appliedIndex, revision: this.revision, compactRevision: this.compactRevision },
      Object.entries(this.imageSections()).map(([name, s]) => [name, s.iterator()] as const),
    ] as const);
    yield* imageFrames(state, iterators);
  }

  private imageSections(): Record<string, SubDb> {
    return { hist: this.histSection, live: this.liveSection, lease: this.leaseSection, ...Object.fromEntries(this.carried) };
  }

  /** Discards all earlier state and loads an image made by snapshot(). */
  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const done = this.restoreNow(chunks);
    this.restoring = done.finally(() => {
      this.restoring = undefined;
    });
    // Reads that wait on it see a failure; with none waiting, it must not be an unhandled rejection (which ends the process).
    this.restoring.catch(() => undefined);
    await done;
  }

  private async restoreNow(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    await this.applying;
    await this.compacting;
    // One synced batch: killed part way, the member keeps its old state whole (and the
    // Raft store records the snapshot only after this, see RaftNode.handleReady).
    const { ops, state } = await imageBatch(chunks, { ...this.imageSections(), meta: this.metaSection });
    ops.push({ type: 'put', sublevel: this.metaSection, key: STATE_KEY, value: packr.pack(state) });
    await this.db.batch(ops, { sync: true });
    await this.load();
    this.onRestored?.();
  }

  async close(): Promise<void> {
    await this.applying;
    await this.compacting;
  }
}

/** A range read at a revision that is gone ('compacted') or not yet there ('future'). */
export class RangeReadError extends Error {
  override readonly name = 'RangeReadError';
  constructor(
    readonly reason: 'compacted' | 'future',
    readonly compactRevision: number,
  ) {
    super(reason === 'compacted' ? `revision is compacted (compactRevision ${compactRevision})` : 'revision is in the future');
  }
}

function leaseKey(leaseId: number): Uint8Array {
  const k = new Uint8Array(8);
  new DataView(k.buffer).setBigUint64(0, BigInt(leaseId));
  return k;
}

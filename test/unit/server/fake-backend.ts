// An in-memory Backend for route tests: a sequential MVCC map (every write
// transaction is one revision, history kept per key for reads at a revision),
// prefix ranges, txn compares, leases (no expiry: tests revoke), compaction, and
// watches that replay and follow an event log. Every call is logged in `calls`
// so a test can assert the backend was (or was not) reached.

import { CompactedError, CompareFailedError, InvalidArgumentError, KeyNotFoundError } from '../../../src/errors.js';
import type {
  Backend, Compare, DeleteRequest, DeleteResponse, KeyValue, LeaseGrantResponse, LeaseInfo, Member, PutRequest, PutResponse, RangeRequest,
  RangeResponse, ResponseHeader, Status, TxnOp, TxnOpResponse, TxnRequest, TxnResponse, WatchEvent, WatchNotice, WatchRequest, WatchStream,
} from '../../../src/server/backend.js';

const MEMBER_ID = '00000000000000a1';
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const fromHex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'hex'));

function startsWith(key: Uint8Array, prefix: Uint8Array): boolean {
  return key.length >= prefix.length && Buffer.from(key.subarray(0, prefix.length)).equals(Buffer.from(prefix));
}

function compareNumbers(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** One version of a key: its key-value, or null where it was deleted. */
interface Version {
  readonly revision: number;
  readonly kv: KeyValue | null;
}

interface Watcher {
  wake(): void;
  progressWanted: boolean;
}

/** The writes of one revision in progress (a txn may touch several keys). */
interface Pending {
  readonly revision: number;
  readonly events: WatchEvent[];
}

export class FakeBackend implements Backend {
  /** Every Backend method called, in order. */
  readonly calls: string[] = [];
  revision = 0;
  compactRevision = 0;
  readyState: { ok: true } | { ok: false; reason: string } = { ok: true };
  /** When set, calls to these methods never answer (they honour their signal, unless `ignoreSignal`). */
  readonly hang = new Set<string>();
  ignoreSignal = false;
  readonly memberList: Member[] = [{ id: MEMBER_ID, name: 'fake', peerUrls: ['http://127.0.0.1:2380'], clientUrls: ['http://127.0.0.1:2379'], isLearner: false }];

  private readonly history = new Map<string, Version[]>();
  private readonly leaseTable = new Map<number, { grantedTtl: number; keys: Set<string> }>();
  private nextLeaseId = 1000;
  private readonly log: { revision: number; events: readonly WatchEvent[] }[] = [];
  private readonly watchers = new Set<Watcher>();
  private closedReason: string | undefined;

  header(): ResponseHeader {
    return { revision: this.revision, raftTerm: 3, memberId: MEMBER_ID };
  }

  private async enter(method: string, signal: AbortSignal): Promise<void> {
    this.calls.push(method);
    if (!this.hang.has(method)) return;
    await new Promise<never>((_resolve, reject) => {
      if (!this.ignoreSignal) signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
    });
  }

  /** The key-value of `key` as of `revision` (0: now). */
  private at(key: string, revision: number): KeyValue | null {
    const versions = this.history.get(key) ?? [];
    for (let i = versions.length - 1; i >= 0; i--) if (revision === 0 || versions[i].revision <= revision) return versions[i].kv;
    return null;
  }

  private currentKv(key: string): KeyValue | null {
    return this.at(key, 0);
  }

  private rangeAt(key: Uint8Array, prefix: boolean, revision: number): KeyValue[] {
    const wanted = hex(key);
    const keys = [...this.history.keys()].filter((k) => (prefix ? k.startsWith(wanted) : k === wanted)).sort();
    return keys.map((k) => this.at(k, revision)).filter((kv): kv is KeyValue => kv !== null);
  }

  private checkRevision(revision: number): void {
    if (revision > this.revision) throw new InvalidArgumentError(`revision ${revision} is in the future (current ${this.revision})`);
    if (revision > 0 && revision < this.compactRevision) throw new CompactedError(this.compactRevision);
  }

  /** Runs writes as one revision; the revision is spent only if something changed. */
  private write<T>(body: (pending: Pending) => T): T {
    const pending: Pending = { revision: this.revision + 1, events: [] };
    const result = body(pending);
    if (pending.events.length > 0) {
      this.revision = pending.revision;
      this.log.push({ revision: pending.revision, events: pending.events });
      for (const w of this.watchers) w.wake();
    }
    return result;
  }

  private putKey(pending: Pending, key: Uint8Array, value: Uint8Array, lease: number): KeyValue | null {
    const k = hex(key);
    const prev = this.currentKv(k);
    if (lease !== 0 && !this.leaseTable.has(lease)) throw new KeyNotFoundError(`lease ${lease} not found`);
    if (prev && prev.lease !== 0) this.leaseTable.get(prev.lease)?.keys.delete(k);
    const kv: KeyValue = {
      key: new Uint8Array(key),
      value: new Uint8Array(value),
      createRevision: prev ? prev.createRevision : pending.revision,
      modRevision: pending.revision,
      version: prev ? prev.version + 1 : 1,
      lease,
    };
    if (lease !== 0) this.leaseTable.get(lease)!.keys.add(k);
    this.history.set(k, [...(this.history.get(k) ?? []), { revision: pending.revision, kv }]);
    pending.events.push({ type: 'put', kv, ...(prev ? { prevKv: prev } : {}) });
    return prev;
  }

  private deleteKeys(pending: Pending, key: Uint8Array, prefix: boolean): KeyValue[] {
    const deleted = this.rangeAt(key, prefix, 0);
    for (const prev of deleted) {
      const k = hex(prev.key);
      if (prev.lease !== 0) this.leaseTable.get(prev.lease)?.keys.delete(k);
      this.history.get(k)!.push({ revision: pending.revision, kv: null });
      const tombstone: KeyValue = { key: prev.key, value: new Uint8Array(0), createRevision: 0, modRevision: pending.revision, version: 0, lease: 0 };
      pending.events.push({ type: 'delete', kv: tombstone, prevKv: prev });
    }
    return deleted;
  }

  async range(request: RangeRequest, signal: AbortSignal): Promise<RangeResponse> {
    await this.enter('range', signal);
    const revision = request.revision ?? 0;
    this.checkRevision(revision);
    const all = this.rangeAt(request.key, request.prefix, revision);
    const limit = request.limit ?? 0;
    const kept = request.countOnly ? [] : limit > 0 ? all.slice(0, limit) : all;
    const kvs = request.keysOnly ? kept.map((kv) => ({ ...kv, value: new Uint8Array(0) })) : kept;
    return { header: this.header(), kvs, count: all.length, more: !request.countOnly && limit > 0 && all.length > limit };
  }

  async put(request: PutRequest, signal: AbortSignal): Promise<PutResponse> {
    await this.enter('put', signal);
    const current = this.currentKv(hex(request.key));
    const failed = (what: string, actual: number, wanted: number): CompareFailedError =>
      new CompareFailedError(`${what} of the key is ${actual}, not ${wanted}`, current ?? undefined);
    if (request.ifVersion !== undefined && (current?.version ?? 0) !== request.ifVersion) throw failed('version', current?.version ?? 0, request.ifVersion);
    if (request.ifModRevision !== undefined && (current?.modRevision ?? 0) !== request.ifModRevision) {
      throw failed('modRevision', current?.modRevision ?? 0, request.ifModRevision);
    }
    const prev = this.write((pending) => this.putKey(pending, request.key, request.value, request.lease ?? 0));
    return { header: this.header(), ...(request.prevKv && prev ? { prevKv: prev } : {}) };
  }

  async delete(request: DeleteRequest, signal: AbortSignal): Promise<DeleteResponse> {
    await this.enter('delete', signal);
    const deleted = this.write((pending) => this.deleteKeys(pending, request.key, request.prefix === true));
    return { header: this.header(), deleted: deleted.length, ...(request.prevKv ? { prevKvs: deleted } : {}) };
  }

  private holds(c: Compare): boolean {
    const kv = this.currentKv(hex(c.key));
    let order: number;
    if (c.target === 'value') {
      if (kv === null) return false;
      order = Buffer.compare(Buffer.from(kv.value), Buffer.from(c.value as Uint8Array));
    } else {
      order = compareNumbers(kv === null ? 0 : kv[c.target], c.value as number);
    }
    return c.op === '=' ? order === 0 : c.op === '!=' ? order !== 0 : c.op === '<' ? order < 0 : order > 0;
  }

  private txnOp(pending: Pending, op: TxnOp): TxnOpResponse {
    if ('get' in op) {
      const kvs = this.rangeAt(op.get.key, op.get.prefix === true, 0);
      return { get: { kvs, count: kvs.length } };
    }
    if ('put' in op) {
      const prev = this.putKey(pending, op.put.key, op.put.value, op.put.lease ?? 0);
      return { put: prev ? { prevKv: prev } : {} };
    }
    return { delete: { deleted: this.deleteKeys(pending, op.delete.key, op.delete.prefix === true).length } };
  }

  async txn(request: TxnRequest, signal: AbortSignal): Promise<TxnResponse> {
    await this.enter('txn', signal);
    const succeeded = request.compare.every((c) => this.holds(c));
    // Refused before anything is written: a txn is all or nothing.
    for (const op of succeeded ? request.success : request.failure) {
      if ('put' in op && op.put.lease && !this.leaseTable.has(op.put.lease)) throw new KeyNotFoundError(`lease ${op.put.lease} not found`);
    }
    const responses = this.write((pending) => (succeeded ? request.success : request.failure).map((op) => this.txnOp(pending, op)));
    return { header: this.header(), succeeded, responses };
  }

  async compact(revision: number, signal: AbortSignal): Promise<{ header: ResponseHeader }> {
    await this.enter('compact', signal);
    if (revision > this.revision) throw new InvalidArgumentError(`revision ${revision} is in the future (current ${this.revision})`);
    if (revision <= this.compactRevision) throw new CompactedError(this.compactRevision, `revision ${revision} is already compacted`);
    this.compactRevision = revision;
    return { header: this.header() };
  }

  watch(request: WatchRequest, signal: AbortSignal): WatchStream {
    this.calls.push('watch');
    return this.follow(request, signal);
  }

  private async *follow(request: WatchRequest, signal: AbortSignal): AsyncGenerator<WatchNotice> {
    const start = request.startRevision ?? 0;
    if (start > 0 && start < this.compactRevision) {
      yield { kind: 'compacted', compactRevision: this.compactRevision };
      return;
    }
    let next = start > 0 ? start : this.revision + 1;
    let wake: (() => void) | undefined;
    const watcher: Watcher = { wake: () => wake?.(), progressWanted: false };
    this.watchers.add(watcher);
    const onAbort = (): void => watcher.wake();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      while (!signal.aborted) {
        const entry = this.log.find((e) => e.revision >= next);
        if (entry) {
          next = entry.revision + 1;
          const events = entry.events
            .filter((e) => (request.prefix ? startsWith(e.kv.key, request.key) : Buffer.from(e.kv.key).equals(Buffer.from(request.key))))
            .map((e) => (request.prevKv || !e.prevKv ? e : { type: e.type, kv: e.kv }));
          if (events.length > 0) yield { kind: 'events', revision: entry.revision, events };
          continue;
        }
        if (this.closedReason !== undefined) {
          yield { kind: 'closed', reason: this.closedReason };
          return;
        }
        if (watcher.progressWanted) {
          watcher.progressWanted = false;
          yield { kind: 'progress', revision: this.revision };
          continue;
        }
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.watchers.delete(watcher);
    }
  }

  requestProgress(): void {
    this.calls.push('requestProgress');
    for (const w of this.watchers) {
      w.progressWanted = true;
      w.wake();
    }
  }

  /** Ends every watch with a `closed` notice (as a member shutting down does). */
  closeWatches(reason: string): void {
    this.closedReason = reason;
    for (const w of this.watchers) w.wake();
  }

  get watcherCount(): number {
    return this.watchers.size;
  }

  async leaseGrant(ttlSeconds: number, signal: AbortSignal): Promise<LeaseGrantResponse> {
    await this.enter('leaseGrant', signal);
    const id = this.nextLeaseId++;
    this.leaseTable.set(id, { grantedTtl: ttlSeconds, keys: new Set() });
    return { header: this.header(), id, ttl: ttlSeconds };
  }

  private lease(id: number): { grantedTtl: number; keys: Set<string> } {
    const lease = this.leaseTable.get(id);
    if (!lease) throw new KeyNotFoundError(`lease ${id} not found`);
    return lease;
  }

  async leaseKeepAlive(id: number, signal: AbortSignal): Promise<{ header: ResponseHeader; ttl: number }> {
    await this.enter('leaseKeepAlive', signal);
    return { header: this.header(), ttl: this.lease(id).grantedTtl };
  }

  async leaseInfo(id: number, signal: AbortSignal): Promise<LeaseInfo & { header: ResponseHeader }> {
    await this.enter('leaseInfo', signal);
    const lease = this.lease(id);
    return { header: this.header(), id, ttl: lease.grantedTtl, grantedTtl: lease.grantedTtl, keys: [...lease.keys].sort().map(fromHex) };
  }

  async leaseRevoke(id: number, signal: AbortSignal): Promise<{ header: ResponseHeader }> {
    await this.enter('leaseRevoke', signal);
    const lease = this.lease(id);
    this.write((pending) => {
      for (const k of [...lease.keys]) this.deleteKeys(pending, fromHex(k), false);
    });
    this.leaseTable.delete(id);
    return { header: this.header() };
  }

  async leases(signal: AbortSignal): Promise<{ header: ResponseHeader; leases: { id: number }[] }> {
    await this.enter('leases', signal);
    return { header: this.header(), leases: [...this.leaseTable.keys()].map((id) => ({ id })) };
  }

  async status(signal: AbortSignal): Promise<Status> {
    await this.enter('status', signal);
    return {
      header: this.header(),
      memberId: MEMBER_ID,
      name: 'fake',
      leaderId: MEMBER_ID,
      term: 3,
      commitIndex: 10,
      appliedIndex: 10,
      revision: this.revision,
      compactRevision: this.compactRevision,
      dbSizeBytes: 4096,
      version: '0.1.0',
      isLearner: false,
    };
  }

  async members(signal: AbortSignal): Promise<{ header: ResponseHeader; members: Member[] }> {
    await this.enter('members', signal);
    return { header: this.header(), members: [...this.memberList] };
  }

  async addMember(peerUrls: readonly string[], learner: boolean, signal: AbortSignal): Promise<{ header: ResponseHeader; member: Member; members: Member[] }> {
    await this.enter('addMember', signal);
    const member: Member = { id: (0xb0 + this.memberList.length).toString(16).padStart(16, '0'), name: '', peerUrls: [...peerUrls], clientUrls: [], isLearner: learner };
    this.memberList.push(member);
    return { header: this.header(), member, members: [...this.memberList] };
  }

  private memberIndex(id: string): number {
    const index = this.memberList.findIndex((m) => m.id === id);
    if (index < 0) throw new KeyNotFoundError(`member ${id} not found`);
    return index;
  }

  async removeMember(id: string, signal: AbortSignal): Promise<{ header: ResponseHeader; members: Member[] }> {
    await this.enter('removeMember', signal);
    this.memberList.splice(this.memberIndex(id), 1);
    return { header: this.header(), members: [...this.memberList] };
  }

  async promoteMember(id: string, signal: AbortSignal): Promise<{ header: ResponseHeader; members: Member[] }> {
    await this.enter('promoteMember', signal);
    const index = this.memberIndex(id);
    if (!this.memberList[index].isLearner) throw new InvalidArgumentError(`member ${id} is not a learner`);
    this.memberList[index] = { ...this.memberList[index], isLearner: false };
    return { header: this.header(), members: [...this.memberList] };
  }

  async transferLeader(targetId: string, signal: AbortSignal): Promise<{ header: ResponseHeader }> {
    await this.enter('transferLeader', signal);
    this.memberIndex(targetId);
    return { header: this.header() };
  }

  async *snapshot(signal: AbortSignal): AsyncGenerator<Uint8Array> {
    this.calls.push('snapshot');
    for (const part of ['cairn-snapshot:', String(this.revision)]) {
      if (signal.aborted) return;
      yield new TextEncoder().encode(part);
    }
  }

  live(): boolean {
    return true;
  }

  ready(): { ok: true } | { ok: false; reason: string } {
    return this.readyState;
  }

  async metrics(): Promise<string> {
    return `# HELP cairn_mvcc_revision Current store revision\n# TYPE cairn_mvcc_revision gauge\ncairn_mvcc_revision ${this.revision}\n`;
  }
}

import { createHash, randomInt } from 'node:crypto';
import { encodeCommand, isFailure, type KvCommand, type KvFailure, type KvResult } from '../kv/kv-commands.js';
import { RangeReadError, type MvccStore } from '../kv/mvcc.js';
import type { WatchHub } from '../kv/watch-hub.js';
import { memberIdFor } from '../node/config.js';
import type { LeaseKeeper } from '../node/lease-keeper.js';
import { encodeMemberInfo, type MemberRecord, type MemberRegistry } from '../node/members.js';
import type { RaftNode } from '../node/raft-node.js';
import { NotAcceptedError, OutcomeUnknownError } from '../node/waiters.js';
import { NONE, nodeId, type NodeId } from '../raft/index.js';
import {
  CairnError,
  CompactedError,
  CompareFailedError,
  InvalidArgumentError,
  KeyNotFoundError,
  NoSpaceError,
  TimeoutError,
  UnavailableError,
} from '../errors.js';
import type * as api from './backend.js';

export const CAIRN_VERSION = '0.1.0';

export interface MemberBackendOptions {
  readonly node: RaftNode;
  readonly store: MvccStore;
  readonly hub: WatchHub;
  readonly members: MemberRegistry;
  readonly leases: LeaseKeeper;
  readonly name: string;
  readonly clusterToken: string;
  /** Size of the member's data on disk, for status and the quota. */
  readonly dbSizeBytes: () => Promise<number>;
  /** Writes (puts, transactions, lease grants) are refused past this data size; deletes and compaction still go. */
  readonly quotaBackendBytes: number;
}

/** Maps the node's own errors onto API errors: not accepted = Unavailable (nothing happened), unknown = Timeout. */
function apiError(err: unknown): unknown {
  if (err instanceof NotAcceptedError) return new UnavailableError(`not accepted: ${err.message}`);
  if (err instanceof OutcomeUnknownError) return new TimeoutError(err.message);
  return err;
}

function failureError(r: KvFailure): CairnError {
  switch (r.error) {
    case 'CompareFailed':
      return new CompareFailedError(r.message, r.kv);
    case 'Compacted':
      return new CompactedError(r.compactRevision ?? 0, r.message);
    case 'KeyNotFound':
      return new KeyNotFoundError(r.message);
    case 'InvalidArgument':
      return new InvalidArgumentError(r.message);
  }
}

/** The client API served by one member: writes go through Raft, linearizable reads through ReadIndex. */
export class MemberBackend implements api.Backend {
  readonly memberId: string;

  /** The data size, sampled every couple of seconds (a directory scan per write would cost too much). */
  private sizeBytes = 0;
  private readonly sizeTimer: NodeJS.Timeout;

  constructor(private readonly o: MemberBackendOptions) {
    this.memberId = o.node.id;
    const sample = (): void => {
      o.dbSizeBytes().then(
        (n) => (this.sizeBytes = n),
        () => undefined,
      );
    };
    sample();
    this.sizeTimer = setInterval(sample, 2000);
    this.sizeTimer.unref();
  }

  close(): void {
    clearInterval(this.sizeTimer);
  }

  private checkQuota(): void {
    if (this.sizeBytes > this.o.quotaBackendBytes) {
      throw new NoSpaceError(`the data size (${this.sizeBytes} bytes) is past --quota-backend-bytes (${this.o.quotaBackendBytes}); delete and compact to make room`);
    }
  }

  private header(revision = this.o.store.revision): api.ResponseHeader {
    return { revision, raftTerm: this.o.node.status().hardState.term, memberId: this.memberId };
  }

  private async propose(command: KvCommand, signal: AbortSignal): Promise<Exclude<KvResult, KvFailure>> {
    let result: unknown;
    try {
      result = await this.o.node.propose(encodeCommand(command), signal);
    } catch (err) {
      throw apiError(err);
    }
    const r = result as KvResult;
    if (isFailure(r)) throw failureError(r);
    return r;
  }

  private async barrier(signal: AbortSignal): Promise<void> {
    try {
      await this.o.node.readBarrier(signal);
    } catch (err) {
      throw apiError(err);
    }
  }

  async range(q: api.RangeRequest, signal: AbortSignal): Promise<api.RangeResponse> {
    if (!q.serializable) await this.barrier(signal);
    try {
      const r = await this.o.store.range(q);
      return { header: this.header(this.o.store.revision), kvs: r.kvs, count: r.count, more: r.more };
    } catch (err) {
      if (err instanceof RangeReadError) {
        if (err.reason === 'compacted') throw new CompactedError(err.compactRevision);
        throw new InvalidArgumentError(`revision ${q.revision} is in the future (current ${this.o.store.revision})`);
      }
      throw err;
    }
  }

  async put(q: api.PutRequest, signal: AbortSignal): Promise<api.PutResponse> {
    this.checkQuota();
    const r = await this.propose({ op: 'put', ...q }, signal);
    if (r.op !== 'put') throw new Error(`unexpected result ${r.op}`);
    return { header: this.header(r.revision), ...(r.prevKv ? { prevKv: r.prevKv } : {}) };
  }

  async delete(q: api.DeleteRequest, signal: AbortSignal): Promise<api.DeleteResponse> {
    const r = await this.propose({ op: 'delete', ...q }, signal);
    if (r.op !== 'delete') throw new Error(`unexpected result ${r.op}`);
    return { header: this.header(r.revision), deleted: r.deleted, ...(r.prevKvs ? { prevKvs: r.prevKvs } : {}) };
  }

  async txn(q: api.TxnRequest, signal: AbortSignal): Promise<api.TxnResponse> {
    if (q.success.some((op) => 'put' in op) || q.failure.some((op) => 'put' in op)) this.checkQuota();
    const r = await this.propose({ op: 'txn', compare: q.compare, success: q.success, failure: q.failure }, signal);
    if (r.op !== 'txn') throw new Error(`unexpected result ${r.op}`);
    return { header: this.header(r.revision), succeeded: r.succeeded, responses: r.responses };
  }

  async compact(revision: number, signal: AbortSignal): Promise<{ header: api.ResponseHeader }> {
    await this.propose({ op: 'compact', revision }, signal);
    return { header: this.header() };
  }

  watch(q: api.WatchRequest, signal: AbortSignal): api.WatchStream {
    return this.o.hub.watch(q, signal);
  }

  requestProgress(): void {
    this.o.hub.requestProgress();
  }

  async leaseGrant(ttlSeconds: number, signal: AbortSignal): Promise<api.LeaseGrantResponse> {
    this.checkQuota();
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) throw new InvalidArgumentError('ttl must be a positive integer (seconds)');
    // The id is chosen here, not in apply, so apply stays deterministic; a clash is refused and rare.
    const id = randomInt(1, 2 ** 47);
    await this.propose({ op: 'leaseGrant', id, ttlSeconds }, signal);
    return { header: this.header(), id, ttl: ttlSeconds };
  }

  async leaseKeepAlive(id: number, signal: AbortSignal): Promise<{ header: api.ResponseHeader; ttl: number }> {
    const r = await this.propose({ op: 'leaseKeepAlive', id }, signal);
    return { header: this.header(), ttl: r.op === 'leaseKeepAlive' ? r.ttlSeconds : 0 };
  }

  async leaseInfo(id: number, signal: AbortSignal): Promise<api.LeaseInfo & { header: api.ResponseHeader }> {
    await this.barrier(signal);
    const info = this.o.store.leaseInfo(id);
    if (!info) throw new KeyNotFoundError(`lease ${id} not found`);
    return { header: this.header(), id, ttl: this.o.leases.remainingSeconds(id), grantedTtl: info.ttlSeconds, keys: info.keys };
  }

  async leaseRevoke(id: number, signal: AbortSignal): Promise<{ header: api.ResponseHeader }> {
    const r = await this.propose({ op: 'leaseRevoke', id }, signal);
    return { header: this.header(r.revision) };
  }

  async leases(signal: AbortSignal): Promise<{ header: api.ResponseHeader; leases: { id: number }[] }> {
    await this.barrier(signal);
    return { header: this.header(), leases: this.o.store.leaseIds().map((id) => ({ id })) };
  }

  async hashKv(revision: number, signal: AbortSignal): Promise<api.HashKvResponse> {
    const at = revision > 0 ? revision : this.o.store.revision;
    const r = await this.range({ key: new Uint8Array(0), prefix: true, revision: at, serializable: true }, signal);
    const digest = createHash('sha256');
    const numbers = Buffer.alloc(40);
    for (const kv of r.kvs) {
      numbers.writeUInt32BE(kv.key.length, 0);
      numbers.writeUInt32BE(kv.value.length, 4);
      numbers.writeDoubleBE(kv.createRevision, 8);
      numbers.writeDoubleBE(kv.modRevision, 16);
      numbers.writeDoubleBE(kv.version, 24);
      numbers.writeDoubleBE(kv.lease, 32);
      digest.update(numbers).update(kv.key).update(kv.value);
    }
    return { header: r.header, revision: at, compactRevision: this.o.store.compactRevision, hash: digest.digest('hex') };
  }

  async status(): Promise<api.Status> {
    const st = this.o.node.status();
    return {
      header: this.header(),
      memberId: this.memberId,
      name: this.o.name,
      leaderId: st.softState.lead === NONE ? null : st.softState.lead,
      term: st.hardState.term,
      commitIndex: st.hardState.commit,
      appliedIndex: this.o.store.appliedIndex,
      revision: this.o.store.revision,
      compactRevision: this.o.store.compactRevision,
      dbSizeBytes: this.sizeBytes,
      version: CAIRN_VERSION,
      isLearner: st.confState.learners.includes(this.o.node.id),
    };
  }

  private memberList(): api.Member[] {
    return this.o.members.list().map((m: MemberRecord) => ({ id: m.id, name: m.name, peerUrls: m.peerUrls, clientUrls: m.clientUrls, isLearner: m.isLearner }));
  }

  async members(signal: AbortSignal): Promise<{ header: api.ResponseHeader; members: api.Member[] }> {
    await this.barrier(signal);
    return { header: this.header(), members: this.memberList() };
  }

  /** Proposes a conf change and waits until this member has applied it (the condition holds). */
  private async changeMembership(change: Parameters<RaftNode['proposeConfChange']>[0], applied: () => boolean, signal: AbortSignal): Promise<void> {
    try {
      this.o.node.proposeConfChange(change);
    } catch (err) {
      throw apiError(err);
    }
    while (!applied()) {
      if (signal.aborted) throw new TimeoutError('membership change not applied in time; it may still be');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async addMember(peerUrls: readonly string[], learner: boolean, signal: AbortSignal) {
    if (peerUrls.length === 0) throw new InvalidArgumentError('peerUrls must name at least one URL');
    const id = nodeId(memberIdFor(peerUrls, this.o.clusterToken));
    if (this.o.members.get(id)) throw new InvalidArgumentError(`a member with peer URLs ${peerUrls.join(',')} already exists (${id})`);
    const context = encodeMemberInfo({ name: '', peerUrls, clientUrls: [] });
    await this.changeMembership({ type: learner ? 'addLearner' : 'addNode', nodeId: id, context }, () => this.o.members.get(id) !== undefined, signal);
    const member = this.memberList().find((m) => m.id === id)!;
    return { header: this.header(), member, members: this.memberList() };
  }

  private known(id: string): NodeId {
    const nid = nodeId(id);
    if (!this.o.members.get(nid)) throw new KeyNotFoundError(`member ${id} not found`);
    return nid;
  }

  async removeMember(id: string, signal: AbortSignal) {
    const nid = this.known(id);
    await this.changeMembership({ type: 'removeNode', nodeId: nid }, () => this.o.members.get(nid) === undefined, signal);
    return { header: this.header(), members: this.memberList() };
  }

  async promoteMember(id: string, signal: AbortSignal) {
    const nid = this.known(id);
    if (!this.o.members.get(nid)!.isLearner) throw new InvalidArgumentError(`member ${id} is not a learner`);
    await this.changeMembership({ type: 'addNode', nodeId: nid }, () => this.o.members.get(nid)?.isLearner === false, signal);
    return { header: this.header(), members: this.memberList() };
  }

  async transferLeader(targetId: string, signal: AbortSignal) {
    const nid = this.known(targetId);
    this.o.node.transferLeadership(nid);
    while (this.o.node.status().softState.lead !== nid) {
      if (signal.aborted) throw new TimeoutError(`leadership did not move to ${targetId} in time`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return { header: this.header() };
  }

  snapshot(): AsyncIterable<Uint8Array> {
    return this.o.store.snapshot();
  }

  live(): boolean {
    return true;
  }

  ready(): { ok: true } | { ok: false; reason: string } {
    const st = this.o.node.status();
    if (st.softState.lead === NONE) return { ok: false, reason: 'no leader' };
    if (this.o.store.appliedIndex < st.hardState.commit) return { ok: false, reason: `catching up (applied ${this.o.store.appliedIndex} of ${st.hardState.commit})` };
    return { ok: true };
  }

  async metrics(): Promise<string> {
    const st = this.o.node.status();
    const lines = [
      ['cairn_raft_term', 'Current Raft term', st.hardState.term],
      ['cairn_raft_commit_index', 'Highest log index known committed', st.hardState.commit],
      ['cairn_raft_applied_index', 'Highest log index applied to the store', this.o.store.appliedIndex],
      ['cairn_raft_is_leader', '1 if this member leads', st.softState.role === 'leader' ? 1 : 0],
      ['cairn_raft_has_leader', '1 if this member knows a leader', st.softState.lead === NONE ? 0 : 1],
      ['cairn_mvcc_revision', 'Current store revision', this.o.store.revision],
      ['cairn_mvcc_compact_revision', 'Revision below which history is compacted', this.o.store.compactRevision],
      ['cairn_watchers', 'Open watches on this member', this.o.hub.size],
      ['cairn_snapshots_installed_total', 'Snapshots received from a leader and installed by this process', this.o.node.snapshotsInstalled],
      ['cairn_db_size_bytes', 'Size of the member database on disk (sampled)', this.sizeBytes],
    ] as const;
    const gauges = lines.map(([name, help, value]) => `# HELP ${name} ${help}\n# TYPE ${name} gauge\n${name} ${value}\n`).join('');
    const counters: [string, string, number][] = [
      ['cairn_raft_ready_total', 'Ready cycles handled (one synced write each at most)', this.o.node.readyCycles],
      ['cairn_raft_entries_persisted_total', 'Log entries persisted', this.o.node.entriesPersisted],
    ];
    let peers = '';
    for (const [peer, st] of this.o.node.transportStats().peers) {
      peers += `cairn_peer_sent_messages_total{peer="${peer}"} ${st.sentMessages}\ncairn_peer_sent_batches_total{peer="${peer}"} ${st.sentBatches}\ncairn_peer_dropped_messages_total{peer="${peer}"} ${st.droppedMessages}\n`;
    }
    return (
      gauges +
      counters.map(([name, help, value]) => `# HELP ${name} ${help}\n# TYPE ${name} counter\n${name} ${value}\n`).join('') +
      '# HELP cairn_peer_sent_messages_total Raft messages a peer acknowledged\n# TYPE cairn_peer_sent_messages_total counter\n' +
      peers
    );
  }
}

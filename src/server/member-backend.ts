import { createHash, randomInt } from 'node:crypto';
import { encodeCommand, isFailure, type KvCommand, type KvFailure, type KvResult } from '../kv/kv-commands.js';
import { RangeReadError, type MvccStore } from '../kv/mvcc.js';
import type { WatchHub } from '../kv/watch-hub.js';
import { memberIdFor } from '../node/config.js';
import type { LeaseKeeper } from '../node/lease-keeper.js';
import { encodeMemberInfo, type MemberRecord, type MemberRegistry } from '../node/members.js';
import type { RaftNode } from '../node/raft-node.js';
import { NotAcceptedError, OutcomeUnknownError } from '../node/waiters.js';
import { NONE, nodeId, type ConfChange, type NodeId } from '../raft/index.js';
import { PeerRequestFailedError, PeerRequestRefusedError, PeerRequestTimeoutError } from '../transport/errors.js';
import { peerUrlsProblem } from '../transport/peer-protocol.js';
import { MEMBERSHIP_ERROR_CODES, type MembershipChange, type MembershipErrorCode, type MembershipOutcome, type Transport } from '../transport/transport.js';
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
import { renderMetrics } from './metrics.js';

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
  /** Carries a membership change to the leader when this member is not it (the peer transport). */
  readonly peers: Pick<Transport, 'requestMembershipChange'>;
  /**
   * The client API's request deadline (client-api.ts requestTimeoutMs): a change sent to
   * the leader asks it to answer within it. Default 10000, as the client API's.
   */
  readonly requestTimeoutMs?: number;
}

/** A membership change checked against this member's view: the conf change to propose and when it shows as applied. */
interface MembershipPlan {
  readonly change: ConfChange;
  readonly applied: () => boolean;
}

/** Maps the node's own errors onto API errors: not accepted = Unavailable (nothing happened), unknown = Timeout. */
function apiError(err: unknown): unknown {
  if (err instanceof NotAcceptedError) return new UnavailableError(`not accepted: ${err.message}`);
  if (err instanceof OutcomeUnknownError) return new TimeoutError(err.message);
  return err;
}

/** The leader's refusal, as the API error a client of the leader would have got. */
function throwIfRefused(outcome: MembershipOutcome): void {
  if (outcome.applied) return;
  switch (outcome.code) {
    case 'InvalidArgument':
      throw new InvalidArgumentError(outcome.message);
    case 'KeyNotFound':
      throw new KeyNotFoundError(outcome.message);
    case 'Unavailable':
      throw new UnavailableError(outcome.message);
    case 'Timeout':
      throw new TimeoutError(outcome.message);
  }
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

  async addMember(peerUrls: readonly string[], learner: boolean, signal: AbortSignal) {
    const id = nodeId(memberIdFor(peerUrls, this.o.clusterToken));
    await this.changeMembership({ op: 'add', peerUrls, learner }, signal);
    const member = this.memberList().find((m) => m.id === id)!;
    return { header: this.header(), member, members: this.memberList() };
  }

  async removeMember(id: string, signal: AbortSignal) {
    await this.changeMembership({ op: 'remove', memberId: id }, signal);
    return { header: this.header(), members: this.memberList() };
  }

  async promoteMember(id: string, signal: AbortSignal) {
    await this.changeMembership({ op: 'promote', memberId: id }, signal);
    return { header: this.header(), members: this.memberList() };
  }

  /**
   * Makes a membership change and waits until this member has applied it. The leader
   * proposes it; any other member asks the leader over the peer transport (as etcd's
   * followers do), so a refusal comes back at once with its reason instead of a timeout.
   */
  private async changeMembership(request: MembershipChange, signal: AbortSignal): Promise<void> {
    const plan = this.planMembershipChange(request);
    const { role, lead } = this.o.node.status().softState;
    if (role === 'leader') return this.changeMembershipOnLeader(plan, signal);
    if (lead === NONE) throw new UnavailableError('no leader: the membership change was not made; retry');
    throwIfRefused(await this.askLeader(lead, request, signal));
    await this.waitApplied(plan.applied, signal, `the leader ${lead} applied the membership change; this member has not applied it yet`);
  }

  /**
   * The leader's side of a change another member asked for: the same checks and path as
   * a client's request here, never forwarded again. Answers the API error as an outcome.
   */
  async serveMembershipChange(request: MembershipChange, signal: AbortSignal): Promise<MembershipOutcome> {
    try {
      const { role, lead } = this.o.node.status().softState;
      if (role !== 'leader') throw new UnavailableError(`member ${this.memberId} is not the leader (${lead === NONE ? 'no leader known' : `the leader is ${lead}`}); retry`);
      await this.changeMembershipOnLeader(this.planMembershipChange(request), signal);
      return { applied: true };
    } catch (err) {
      if (err instanceof CairnError && MEMBERSHIP_ERROR_CODES.includes(err.code as MembershipErrorCode)) {
        return { applied: false, code: err.code as MembershipErrorCode, message: err.message };
      }
      throw err;
    }
  }

  /** Checks the change against the members as this member has applied them. */
  private planMembershipChange(request: MembershipChange): MembershipPlan {
    if (request.op === 'add') {
      const problem = peerUrlsProblem(request.peerUrls);
      if (problem !== undefined) throw new InvalidArgumentError(problem);
      const id = nodeId(memberIdFor(request.peerUrls, this.o.clusterToken));
      if (this.o.members.get(id)) throw new InvalidArgumentError(`a member with peer URLs ${request.peerUrls.join(',')} already exists (${id})`);
      const context = encodeMemberInfo({ name: '', peerUrls: request.peerUrls, clientUrls: [] });
      return { change: { type: request.learner ? 'addLearner' : 'addNode', nodeId: id, context }, applied: () => this.o.members.get(id) !== undefined };
    }
    const id = this.known(request.memberId);
    if (request.op === 'remove') return { change: { type: 'removeNode', nodeId: id }, applied: () => this.o.members.get(id) === undefined };
    if (!this.o.members.get(id)!.isLearner) throw new InvalidArgumentError(`member ${request.memberId} is not a learner`);
    return { change: { type: 'addNode', nodeId: id }, applied: () => this.o.members.get(id)?.isLearner === false };
  }

  /** Proposes the change (a refusal is Unavailable with the core's reason) and waits until applied here. */
  private async changeMembershipOnLeader(plan: MembershipPlan, signal: AbortSignal): Promise<void> {
    try {
      this.o.node.proposeConfChange(plan.change);
    } catch (err) {
      throw apiError(err);
    }
    await this.waitApplied(plan.applied, signal, 'membership change not applied in time; it may still be');
  }

  /** The leader's answer; what is known when there is none: nothing sent (Unavailable) or unknown (Timeout). */
  private async askLeader(leader: NodeId, request: MembershipChange, signal: AbortSignal): Promise<MembershipOutcome> {
    try {
      return await this.o.peers.requestMembershipChange(leader, request, { timeoutMs: this.o.requestTimeoutMs ?? 10_000, signal });
    } catch (err) {
      if (err instanceof PeerRequestRefusedError) throw new UnavailableError(`the leader ${leader} did not take the membership change: ${err.message}`);
      if (err instanceof PeerRequestTimeoutError || err instanceof PeerRequestFailedError) {
        throw new TimeoutError(`no answer from the leader ${leader} (${err.message}); the membership change may or may not have been applied`);
      }
      throw err;
    }
  }

  /** Polls until `applied` holds (membership changes are rare: no waiter list for them). */
  private async waitApplied(applied: () => boolean, signal: AbortSignal, timeoutMessage: string): Promise<void> {
    while (!applied()) {
      if (signal.aborted) throw new TimeoutError(timeoutMessage);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private known(id: string): NodeId {
    const nid = nodeId(id);
    if (!this.o.members.get(nid)) throw new KeyNotFoundError(`member ${id} not found`);
    return nid;
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
    return renderMetrics({ status: this.o.node.status(), node: this.o.node, store: this.o.store, watchers: this.o.hub.size, dbSizeBytes: this.sizeBytes });
  }

}

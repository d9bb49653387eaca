import { assert } from './assert.js';
import { validateConfig, type RaftConfig, type RaftConfigInput } from './config.js';
import type { Progress } from './progress.js';
import { RaftLog } from './raft-log.js';
import { ReadOnly, type PendingRead } from './read-only.js';
import { decodeConfChange, isWellFormedConfChange } from './conf-change.js';
import { LogCompactedError } from './storage.js';
import { ProgressTracker } from './tracker.js';
import {
  ACCEPTED,
  EMPTY_BYTES,
  NONE,
  makeMessage,
  rejected,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type LogIndex,
  type Message,
  type MessageFields,
  type NodeId,
  type ProposalResult,
  type ReadState,
  type Role,
  type Snapshot,
  type Term,
} from './types.js';

/** Marks the vote requests of an election forced by leader transfer: they bypass the leader lease. */
const TRANSFER_CONTEXT = new TextEncoder().encode('transfer');

type CampaignKind = 'preElection' | 'election' | 'transfer';

function isTransfer(m: Message): boolean {
  const c = m.context;
  return c !== undefined && c.length === TRANSFER_CONTEXT.length && c.every((b, i) => b === TRANSFER_CONTEXT[i]);
}

function payloadBytes(entries: readonly Entry[]): number {
  let n = 0;
  for (const e of entries) n += e.data.byteLength;
  return n;
}

/**
 * The Raft state machine: no I/O, no clock, no randomness of its own. Input comes
 * through tick(), step() and the local calls; output collects in `messages`,
 * `readStates` and the log, and leaves through RawNode.ready().
 *
 * Roles: stepLeader / stepCandidate (pre and real) / stepFollower handle the
 * messages that depend on the role; step() handles terms and votes for all.
 */
export class Raft {
  readonly id: NodeId;
  readonly config: RaftConfig;
  term: Term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  role: Role = 'follower';
  readonly log: RaftLog;

  /** Members and what the leader knows of their logs (self included). */
  readonly tracker: ProgressTracker;
  isLearner = false;

  private votes = new Map<NodeId, boolean>();
  messages: Message[] = [];
  readStates: ReadState[] = [];

  /** Ticks since the last election timeout (followers/candidates) or CheckQuorum round (leader). */
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;

  leadTransferee: NodeId = NONE;
  /** No conf change may be proposed until the one at this index has been applied. */
  private pendingConfIndex: LogIndex = 0;
  /** Bytes of entries appended by this leader and not yet handed to the application as committed. */
  private uncommittedBytes = 0;
  private readonly readOnly: ReadOnly;
  /** Reads that arrived before this leader committed an entry of its term (it cannot know the commit index yet). */
  private readsBeforeFirstCommit: PendingRead[] = [];

  constructor(input: RaftConfigInput) {
    this.config = validateConfig(input);
    this.id = this.config.id;
    this.log = new RaftLog(this.config.storage, this.config.maxCommittedSizePerReadyBytes);
    this.readOnly = new ReadOnly(this.config.maxPendingReads);
    this.tracker = new ProgressTracker(this.config.maxInflightMsgs, this.config.maxInflightBytes);
    const { hardState, confState } = this.config.storage.initialState();
    this.applyConfState(confState);
    if (hardState.term !== 0 || hardState.commit !== 0) this.loadHardState(hardState);
    if (this.config.applied > 0) this.log.appliedTo(this.config.applied);
    this.becomeFollower(this.term, NONE);
  }

  private loadHardState(hs: HardState): void {
    assert(
      hs.commit >= this.log.committed && hs.commit <= this.log.lastIndex(),
      () => `hard state commit ${hs.commit} is outside [${this.log.committed}, ${this.log.lastIndex()}]`,
    );
    this.log.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  confState(): ConfState {
    return this.tracker.confState();
  }

  /** A member that may campaign: a voter in its own config, with no snapshot waiting to be persisted. */
  promotable(): boolean {
    return this.tracker.isVoter(this.id) && this.log.unstable.snapshot === undefined;
  }

  // ---- sending -------------------------------------------------------------

  private send(fields: MessageFields): void {
    const m = makeMessage({ from: this.id, ...fields });
    assert(m.to !== NONE && m.to !== this.id, () => `message ${m.type} to ${m.to || 'nobody'}`);
    if (m.type === 'vote' || m.type === 'voteResp' || m.type === 'preVote' || m.type === 'preVoteResp') {
      // These carry the term of the election they are about, which may be ahead of ours.
      assert(m.term !== 0, () => `${m.type} must carry a term`);
      this.messages.push(m);
    } else if (m.type === 'prop' || m.type === 'readIndex' || m.type === 'transferLeader') {
      // Forwarded requests carry no term: the leader treats them like its own local calls.
      this.messages.push({ ...m, term: 0 });
    } else {
      this.messages.push({ ...m, term: this.term });
    }
  }

  /** Sends an append (or a snapshot when the follower needs compacted entries). Returns whether anything was sent. */
  sendAppend(to: NodeId, sendIfEmpty = true): boolean {
    const pr = this.tracker.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    let entries: Entry[];
    try {
      entries = prevTerm === undefined ? [] : this.log.slice(pr.next, this.log.lastIndex() + 1, this.config.maxSizePerMsgBytes);
    } catch (err) {
      if (!(err instanceof LogCompactedError)) throw err;
      entries = [];
    }
    if (prevTerm === undefined || (entries.length === 0 && pr.next <= this.log.lastIndex())) {
      return this.sendSnapshot(to, pr);
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({ type: 'app', to, index: prevIndex, logTerm: prevTerm, entries, commit: this.log.committed });
    if (entries.length > 0) {
      const last = entries[entries.length - 1].index;
      if (pr.state === 'replicate') {
        pr.sentAppend(last, payloadBytes(entries));
      } else {
        pr.paused = true;
      }
    }
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    // A follower we have not heard from recently may be down: do not spend a snapshot on it.
    if (!pr.recentActive) return false;
    const snapshot = this.log.snapshot();
    assert(snapshot.metadata.index > 0, () => `need a snapshot for ${to} but none exists`);
    pr.becomeSnapshot(snapshot.metadata.index);
    this.send({ type: 'snap', to, snapshot });
    return true;
  }

  private sendHeartbeat(to: NodeId, readRound: number | undefined): void {
    const pr = this.tracker.progress.get(to);
    assert(pr, () => `heartbeat to unknown ${to}`);
    // Never tell a follower to commit past what it is known to have.
    const commit = Math.min(pr.match, this.log.committed);
    this.send({ type: 'heartbeat', to, commit, ...(readRound === undefined ? {} : { readRound }) });
  }

  /**
   * New entries or a new commit index that followers have not been sent yet. Set by
   * proposals and acknowledgements, sent once per Ready (flushBroadcast): many
   * proposals and acks between two Readies then cost one append per follower,
   * not one each.
   */
  private broadcastPending = false;

  /** Sends what broadcastPending stands for. RawNode calls it before it looks for a Ready. */
  flushBroadcast(): void {
    if (!this.broadcastPending) return;
    this.broadcastPending = false;
    if (this.role === 'leader') this.broadcastAppend();
  }

  broadcastAppend(): void {
    for (const id of this.tracker.progress.keys()) if (id !== this.id) this.sendAppend(id);
  }

  private broadcastHeartbeat(): void {
    const round = this.readOnly.currentRoundId();
    for (const id of this.tracker.progress.keys()) if (id !== this.id) this.sendHeartbeat(id, round);
  }

  // ---- role transitions ------------------------------------------------------

  private reset(term: Term): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.config.electionTicks + this.config.random.nextInt(this.config.electionTicks);
    this.leadTransferee = NONE;
    this.votes.clear();
    this.tracker.resetAll(this.log.lastIndex() + 1, this.id, this.log.lastStableIndex());
    this.pendingConfIndex = 0;
    this.uncommittedBytes = 0;
    this.readOnly.reset();
    this.readsBeforeFirstCommit = [];
  }

  becomeFollower(term: Term, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.role = 'follower';
  }

  private becomePreCandidate(): void {
    assert(this.role !== 'leader', 'leader cannot become pre-candidate');
    // A pre-candidate changes neither term nor vote: losing the pre-vote costs the cluster nothing.
    this.votes.clear();
    this.lead = NONE;
    this.role = 'preCandidate';
  }

  private becomeCandidate(): void {
    assert(this.role !== 'leader', 'leader cannot become candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    assert(this.role === 'candidate', () => `only a candidate becomes leader (was ${this.role})`);
    this.reset(this.term);
    this.lead = this.id;
    this.role = 'leader';
    const self = this.tracker.progress.get(this.id);
    assert(self, 'a leader is in its own config');
    self.becomeReplicate();
    // Conf changes wait until everything before this term is applied (etcd's guard
    // against the single-server-change bug across leader changes).
    this.pendingConfIndex = this.log.lastIndex();
    // The empty entry of the new term: committing it commits everything before it (§5.4.2).
    const ok = this.appendEntries([{ term: 0, index: 0, type: 'normal', data: EMPTY_BYTES }]);
    assert(ok, 'the empty leader entry is never refused');
  }

  // ---- ticks -------------------------------------------------------------------

  tick(): void {
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(this.config.preVote ? 'preElection' : 'election');
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.config.electionTicks) {
      this.electionElapsed = 0;
      if (this.config.checkQuorum) this.checkQuorum();
      if (this.role === 'leader' && this.leadTransferee !== NONE) this.leadTransferee = NONE; // transfer took too long
    }
    if (this.role !== 'leader') return;
    if (this.heartbeatElapsed >= this.config.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat();
    }
  }

  /** CheckQuorum: a leader that has not heard from a quorum since the last round steps down. */
  private checkQuorum(): void {
    if (!this.tracker.quorumActiveSinceLastCheck(this.id)) this.becomeFollower(this.term, NONE);
  }

  // ---- elections -----------------------------------------------------------------

  hup(kind: CampaignKind): void {
    if (this.role === 'leader') return;
    if (!this.promotable()) return;
    if (this.hasUnappliedConfChange()) return; // our config may be about to change: campaign once it has
    this.campaign(kind);
  }

  private hasUnappliedConfChange(): boolean {
    if (this.log.committed <= this.log.applied) return false;
    const lo = Math.max(this.log.applied + 1, this.log.firstIndex());
    if (lo > this.log.committed) return false;
    return this.log.slice(lo, this.log.committed + 1, Number.MAX_SAFE_INTEGER).some((e) => e.type === 'confChange');
  }

  private campaign(kind: CampaignKind): void {
    let term: Term;
    if (kind === 'preElection') {
      this.becomePreCandidate();
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      term = this.term;
    }
    const type = kind === 'preElection' ? 'preVote' : 'vote';
    if (this.poll(this.id, true) === 'won') {
      // A single-voter cluster wins at once.
      if (kind === 'preElection') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    for (const id of this.tracker.voters) {
      if (id === this.id) continue;
      this.send({
        type,
        to: id,
        term,
        index: this.log.lastIndex(),
        logTerm: this.log.lastTerm(),
        ...(kind === 'transfer' ? { context: TRANSFER_CONTEXT } : {}),
      });
    }
  }

  private poll(id: NodeId, granted: boolean): 'won' | 'lost' | 'pending' {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    return this.tracker.voteResult(this.votes);
  }

  // ---- step ------------------------------------------------------------------------

  step(m: Message): void {
    if ((m.type === 'voteResp' || m.type === 'preVoteResp') && this.role !== 'leader') {
      // Whatever its term or answer, a voter tells us how far it knows the log is
      // committed (capped to our last index, with that entry's term).
      this.learnCommit(m.commit, m.logTerm);
    }
    if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        // Leader lease: while we hear from a leader, a candidate cannot unseat it.
        const inLease = this.config.checkQuorum && this.lead !== NONE && this.electionElapsed < this.config.electionTicks;
        if (!isTransfer(m) && inLease) return;
      }
      if (m.type === 'preVote') {
        // A pre-vote never changes our term.
      } else if (m.type === 'preVoteResp' && !m.reject) {
        // Our term rises only when the pre-vote wins.
      } else if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term !== 0 && m.term < this.term) {
      if ((this.config.checkQuorum || this.config.preVote) && (m.type === 'heartbeat' || m.type === 'app')) {
        // A stale leader (e.g. just back from a partition) learns our term and steps down.
        this.send({ type: 'appResp', to: m.from });
      } else if (m.type === 'preVote') {
        this.send({ type: 'preVoteResp', to: m.from, term: this.term, reject: true });
      }
      return;
    }

    switch (m.type) {
      case 'vote':
      case 'preVote':
        this.handleVoteRequest(m);
        return;
      default:
        if (this.role === 'leader') this.stepLeader(m);
        else if (this.role === 'follower') this.stepFollower(m);
        else this.stepCandidate(m);
    }
  }

  private handleVoteRequest(m: Message): void {
    const canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (m.type === 'preVote' && m.term > this.term);
    const respType = m.type === 'vote' ? 'voteResp' : 'preVoteResp';
    // A learner is not part of any quorum: it never grants a vote.
    const commitInfo = this.commitInfoFor(m.index);
    if (canVote && !this.isLearner && this.log.isUpToDate(m.index, m.logTerm)) {
      this.send({ type: respType, to: m.from, term: m.term, ...commitInfo });
      if (m.type === 'vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: respType, to: m.from, term: this.term, reject: true, ...commitInfo });
    }
  }

  /**
   * What a vote answer tells the candidate of our commit index: the index
   * min(committed, candidate's last index) and our term there. An entry is
   * committed for everyone once it is committed anywhere, and a log holding the
   * same (index, term) holds the same entries up to it, so the candidate may
   * commit that far. This matters when the leader removed itself: the members
   * left may not have heard that the removal committed, and until they apply it
   * their config still needs the removed member's vote, which it may refuse
   * (its log can be longer than theirs). Learning the commit lets them apply it.
   */
  private commitInfoFor(candidateLastIndex: LogIndex): { commit: LogIndex; logTerm: Term } | Record<string, never> {
    const commit = Math.min(this.log.committed, candidateLastIndex);
    const term = this.log.term(commit);
    return commit > 0 && term !== undefined ? { commit, logTerm: term } : {};
  }

  private learnCommit(commit: LogIndex, term: Term): void {
    if (commit > this.log.committed && this.log.matchTerm(commit, term)) this.log.commitTo(commit);
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'prop':
        // Only in the term the forwarder saw us lead: its proposal then has that term or
        // never commits, which lets the forwarder tell a lost proposal from a slow one
        // (RaftNode retries it once a later term's entry is applied).
        if (m.logTerm === this.term) this.proposeOnLeader(m.entries);
        return;
      case 'readIndex':
        this.addRead({ from: m.from, context: m.context ?? EMPTY_BYTES });
        return;
      case 'transferLeader':
        this.startTransfer(m.from);
        return;
    }
    const pr = this.tracker.progress.get(m.from);
    if (!pr) return; // not a member (any more)
    switch (m.type) {
      case 'appResp':
        pr.recentActive = true;
        if (m.reject) this.handleAppendRejection(m, pr);
        else this.handleAppendSuccess(m, pr);
        return;
      case 'heartbeatResp':
        pr.recentActive = true;
        pr.paused = false;
        if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
        this.handleReadAck(m);
        return;
      case 'snapStatus':
        if (pr.state !== 'snapshot') return;
        if (m.reject) pr.pendingSnapshot = 0;
        pr.becomeProbe();
        // Wait for the follower's next answer before probing it again.
        pr.paused = true;
        return;
      case 'unreachable':
        if (pr.state === 'replicate') pr.becomeProbe();
        return;
    }
  }

  private handleAppendRejection(m: Message, pr: Progress): void {
    // The follower's hint (rejectHint, logTerm) lets us skip a whole term of entries per round trip.
    let nextProbe = m.rejectHint;
    if (m.logTerm > 0) nextProbe = this.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
    if (pr.maybeDecrTo(m.index, nextProbe)) {
      if (pr.state === 'replicate') pr.becomeProbe();
      this.sendAppend(m.from);
    }
  }

  private handleAppendSuccess(m: Message, pr: Progress): void {
    // A probe answered at exactly the known match also proves where the logs agree.
    if (!pr.maybeUpdate(m.index) && !(pr.match === m.index && pr.state === 'probe')) return;
    if (pr.state === 'probe') {
      pr.becomeReplicate();
    } else if (pr.state === 'snapshot' && pr.match + 1 >= this.log.firstIndex()) {
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === 'replicate') {
      pr.freeAcked(m.index);
    }
    // A new commit index goes out at once (followers serve reads that wait on it).
    if (this.maybeCommit()) this.broadcastPending = true;
    // Keep the pipeline full: send as long as the window allows, without empty messages.
    for (let sent = 0; sent < this.config.maxInflightMsgs && this.sendAppend(m.from, false); sent++);
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.send({ type: 'timeoutNow', to: m.from });
    }
  }

  private stepCandidate(m: Message): void {
    const expected = this.role === 'preCandidate' ? 'preVoteResp' : 'voteResp';
    switch (m.type) {
      case 'app':
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case 'heartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case 'snap':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case 'preVoteResp':
      case 'voteResp': {
        if (m.type !== expected) return;
        const result = this.poll(m.from, !m.reject);
        if (result === 'won') {
          if (this.role === 'preCandidate') this.campaign('election');
          else {
            this.becomeLeader();
            this.broadcastAppend();
          }
        } else if (result === 'lost') {
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'app':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case 'snap':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case 'timeoutNow':
        // Our leader asks us to take over: skip the pre-vote and the lease.
        this.hup('transfer');
        return;
      case 'readIndexResp':
        this.readStates.push({ index: m.index, context: m.context ?? EMPTY_BYTES });
        return;
    }
  }

  // ---- follower handlers ------------------------------------------------------------

  private handleAppendEntries(m: Message): void {
    if (m.index < this.log.committed) {
      this.send({ type: 'appResp', to: m.from, index: this.log.committed });
      return;
    }
    const lastNewIndex = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNewIndex !== undefined) {
      this.send({ type: 'appResp', to: m.from, index: lastNewIndex });
      return;
    }
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send({ type: 'appResp', to: m.from, index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term });
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.send({ type: 'heartbeatResp', to: m.from, ...(m.readRound === undefined ? {} : { readRound: m.readRound }) });
  }

  private handleSnapshot(m: Message): void {
    assert(m.snapshot, 'snap message without a snapshot');
    if (this.restore(m.snapshot)) {
      this.send({ type: 'appResp', to: m.from, index: this.log.lastIndex() });
    } else {
      this.send({ type: 'appResp', to: m.from, index: this.log.committed });
    }
  }

  /** Installs a leader's snapshot unless our log already has everything in it. */
  private restore(snapshot: Snapshot): boolean {
    const { index, term } = snapshot.metadata;
    if (index <= this.log.committed) return false;
    if (this.log.matchTerm(index, term)) {
      // We have the snapshot's last entry: only commit moves.
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(snapshot);
    this.applyConfState(snapshot.metadata.confState);
    return true;
  }

  // ---- proposals -------------------------------------------------------------------------

  /** Appends entries of this term at the end of the log, or refuses when over the uncommitted limit. */
  private appendEntries(entries: readonly Entry[]): boolean {
    const last = this.log.lastIndex();
    const bytes = payloadBytes(entries);
    if (this.uncommittedBytes > 0 && bytes > 0 && this.uncommittedBytes + bytes > this.config.maxUncommittedEntriesBytes) {
      return false;
    }
    this.uncommittedBytes += bytes;
    const stamped = entries.map((e, i) => ({ ...e, term: this.term, index: last + 1 + i }));
    this.log.append(stamped);
    // Our own copy counts toward commit only once durable: see advance().
    return true;
  }

  proposeOnLeader(entries: readonly Entry[]): ProposalResult {
    assert(entries.length > 0, 'empty proposal');
    if (!this.tracker.progress.has(this.id)) return rejected('not-a-member');
    if (this.leadTransferee !== NONE) return rejected('transferring-leadership');
    const confChanges = entries.filter((e) => e.type === 'confChange').length;
    if (confChanges > 0 && (confChanges > 1 || this.pendingConfIndex > this.log.applied)) {
      return rejected('conf-change-pending');
    }
    // A malformed one (only a faulty peer could forward it) would stop every member that applies it.
    if (confChanges > 0 && !entries.every((e) => e.type !== 'confChange' || isWellFormedConfChange(e.data))) return rejected('malformed-conf-change');
    if (confChanges > 0 && !this.promotionReady(entries)) return rejected('learner-not-caught-up');
    if (!this.appendEntries(entries)) return rejected('uncommitted-limit');
    if (confChanges > 0) this.pendingConfIndex = this.log.lastIndex();
    this.broadcastPending = true;
    return ACCEPTED;
  }

  /**
   * A learner becomes a voter only once it holds everything committed: promoting
   * one that is far behind would add a voter that cannot help form a quorum for a
   * long while (etcd refuses it too).
   */
  private promotionReady(entries: readonly Entry[]): boolean {
    for (const e of entries) {
      if (e.type !== 'confChange') continue;
      const cc = decodeConfChange(e.data);
      if (cc.type !== 'addNode' || !this.tracker.isLearner(cc.nodeId)) continue;
      const pr = this.tracker.progress.get(cc.nodeId);
      if (!pr || pr.match < this.log.committed) return false;
    }
    return true;
  }

  propose(entries: readonly Entry[]): ProposalResult {
    if (this.role === 'leader') return this.proposeOnLeader(entries);
    if (this.lead === NONE) return rejected('no-leader');
    this.send({ type: 'prop', to: this.lead, entries, logTerm: this.term });
    return ACCEPTED;
  }

  /** The application has durably stored entries up to lastStable: a leader may now count itself. */
  onStable(): void {
    if (this.role !== 'leader') return;
    const self = this.tracker.progress.get(this.id);
    if (self && self.maybeUpdate(this.log.lastStableIndex()) && this.maybeCommit()) this.broadcastPending = true;
  }

  /** Leader: commit whatever a quorum of voters has durably stored, if it is of this term. */
  maybeCommit(): boolean {
    const index = this.tracker.committed();
    const firstOfTerm = !this.committedInCurrentTerm();
    if (!this.log.maybeCommit(index, this.term)) return false;
    if (firstOfTerm) this.releaseReadsBeforeFirstCommit();
    return true;
  }

  private committedInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  reduceUncommittedBytes(committed: readonly Entry[]): void {
    if (this.role !== 'leader') return;
    this.uncommittedBytes = Math.max(0, this.uncommittedBytes - payloadBytes(committed));
  }

  // ---- ReadIndex ----------------------------------------------------------------------------

  readIndex(context: Uint8Array): ProposalResult {
    if (this.role === 'leader') {
      return this.addRead({ from: this.id, context }) ? ACCEPTED : rejected('too-many-reads');
    }
    if (this.lead === NONE) return rejected('no-leader');
    this.send({ type: 'readIndex', to: this.lead, context });
    return ACCEPTED;
  }

  private addRead(read: PendingRead): boolean {
    if (!this.committedInCurrentTerm()) {
      if (this.readsBeforeFirstCommit.length >= this.config.maxPendingReads) return false;
      this.readsBeforeFirstCommit.push(read);
      return true;
    }
    if (this.tracker.voters.length === 1 && this.tracker.isVoter(this.id)) {
      // No one else can be leader: our commit index is current.
      this.answerRead(read, this.log.committed);
      return true;
    }
    if (!this.readOnly.add(read)) return false;
    this.maybeStartReadRound();
    return true;
  }

  private maybeStartReadRound(): void {
    const round = this.readOnly.maybeStartRound(this.log.committed, this.id);
    if (round === undefined) return;
    for (const id of this.tracker.progress.keys()) if (id !== this.id) this.sendHeartbeat(id, round);
    this.handleReadAck(makeMessage({ type: 'heartbeatResp', from: this.id, readRound: round }));
  }

  private handleReadAck(m: Message): void {
    const acks = this.readOnly.ack(m.from, m.readRound);
    if (!acks || !this.tracker.hasQuorum((id) => acks.has(id))) return;
    const done = this.readOnly.completeRound();
    if (done) for (const read of done.reads) this.answerRead(read, done.index);
    this.maybeStartReadRound();
  }

  private answerRead(read: PendingRead, index: LogIndex): void {
    if (read.from === this.id) this.readStates.push({ index, context: read.context });
    else this.send({ type: 'readIndexResp', to: read.from, index, context: read.context });
  }

  private releaseReadsBeforeFirstCommit(): void {
    const reads = this.readsBeforeFirstCommit;
    this.readsBeforeFirstCommit = [];
    for (const read of reads) this.addRead(read);
  }

  // ---- leader transfer -------------------------------------------------------------------------

  transferLeadership(to: NodeId): void {
    if (this.role === 'leader') this.startTransfer(to);
    else if (this.lead !== NONE) this.send({ type: 'transferLeader', to: this.lead, from: to });
  }

  private startTransfer(target: NodeId): void {
    const pr = this.tracker.progress.get(target);
    if (!pr || pr.isLearner || target === this.id || target === this.leadTransferee) return;
    this.leadTransferee = target;
    // The transfer must finish within one election timeout or it is abandoned (tickHeartbeat).
    this.electionElapsed = 0;
    if (pr.match === this.log.lastIndex()) this.send({ type: 'timeoutNow', to: target });
    else this.sendAppend(target);
  }

  // ---- membership ----------------------------------------------------------------------------------

  applyConfChange(cc: ConfChange): ConfState {
    const { voters: current } = this.tracker;
    const voters = current.filter((id) => id !== cc.nodeId);
    const learners = this.tracker.learners.filter((id) => id !== cc.nodeId);
    switch (cc.type) {
      case 'addNode':
        voters.push(cc.nodeId);
        break;
      case 'addLearner':
        // Demoting a voter in one step could leave no quorum: adding a voter as learner is ignored.
        if (current.includes(cc.nodeId)) return this.confState();
        learners.push(cc.nodeId);
        break;
      case 'removeNode':
        break;
    }
    this.applyConfState({ voters, learners });
    return this.confState();
  }

  private applyConfState(cs: ConfState): void {
    this.tracker.applyConfState(cs, this.log.lastIndex() + 1);
    this.isLearner = this.tracker.isLearner(this.id);
    if ((this.role === 'candidate' || this.role === 'preCandidate') && !this.tracker.isVoter(this.id)) {
      // A candidate that learned (from a vote answer) of its own removal stops campaigning.
      this.becomeFollower(this.term, NONE);
      return;
    }
    if (this.role !== 'leader') return;
    if (!this.tracker.isVoter(this.id)) {
      // A removed leader steps down; the others elect a new one after an election timeout.
      this.becomeFollower(this.term, NONE);
      return;
    }
    if (this.leadTransferee !== NONE && !this.tracker.isVoter(this.leadTransferee)) this.leadTransferee = NONE;
    // The quorum changed: something may now be committed, and new members need the log.
    this.maybeCommit();
    this.broadcastAppend();
    this.maybeStartReadRound();
  }
}

import { assert } from './assert.js';
import type { RaftConfigInput } from './config.js';
import { encodeConfChange } from './conf-change.js';
import { Raft } from './raft.js';
import type { MemoryStorage } from './storage.js';
import type { ProgressState } from './progress.js';
import {
  EMPTY_BYTES,
  NONE,
  PEER_MESSAGE_TYPES,
  hardStateEqual,
  isEmptyHardState,
  makeMessage,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type LogIndex,
  type Message,
  type MessageType,
  type NodeId,
  type ProposalResult,
  type Ready,
  type SoftState,
  type Term,
} from './types.js';

const RESPONSE_TYPES: ReadonlySet<MessageType> = new Set<MessageType>(['appResp', 'voteResp', 'preVoteResp', 'heartbeatResp']);

export interface ProgressStatus {
  readonly match: LogIndex;
  readonly next: LogIndex;
  readonly state: ProgressState;
  readonly isLearner: boolean;
}

export interface Status {
  readonly id: NodeId;
  readonly hardState: HardState;
  readonly softState: SoftState;
  readonly applied: LogIndex;
  readonly firstIndex: LogIndex;
  readonly lastIndex: LogIndex;
  readonly confState: ConfState;
  readonly leadTransferee: NodeId;
  /** Only on a leader. */
  readonly progress?: ReadonlyMap<NodeId, ProgressStatus>;
}

/**
 * The application's handle on the core (etcd-io/raft's RawNode). Synchronous and
 * single-threaded: call ready() once, do what it says, then advance(); the
 * other calls may come in between.
 */
export class RawNode {
  private readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  private pendingReady: Ready | undefined;

  constructor(config: RaftConfigInput) {
    this.raft = new Raft(config);
    this.prevSoftState = this.softState();
    this.prevHardState = this.raft.hardState();
  }

  private softState(): SoftState {
    return { lead: this.raft.lead, role: this.raft.role };
  }

  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (with a pre-vote when enabled). */
  campaign(): void {
    this.raft.hup(this.raft.config.preVote ? 'preElection' : 'election');
  }

  propose(data: Uint8Array): ProposalResult {
    return this.raft.propose([{ term: 0, index: 0, type: 'normal', data }]);
  }

  proposeConfChange(cc: ConfChange): ProposalResult {
    return this.raft.propose([{ term: 0, index: 0, type: 'confChange', data: encodeConfChange(cc) }]);
  }

  /** Call when applying a committed confChange entry; persist the returned ConfState with the applied index. */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /** Delivers a message from a peer. Returns false (and changes nothing) for messages no peer may send. */
  step(m: Message): boolean {
    if (!PEER_MESSAGE_TYPES.has(m.type) || m.to !== this.raft.id) return false;
    // An answer from a member we no longer know is stale.
    if (RESPONSE_TYPES.has(m.type) && !this.raft.tracker.progress.has(m.from)) return false;
    this.raft.step(m);
    return true;
  }

  /** Asks for a read index; the answer arrives as a ReadState with this context. */
  readIndex(context: Uint8Array): ProposalResult {
    return this.raft.readIndex(context);
  }

  transferLeadership(to: NodeId): void {
    this.raft.transferLeadership(to);
  }

  /** The transport reports whether a 'snap' message reached `id` (ok) or not. */
  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.step(makeMessage({ type: 'snapStatus', from: id, to: this.raft.id, reject: !ok }));
  }

  reportUnreachable(id: NodeId): void {
    this.raft.step(makeMessage({ type: 'unreachable', from: id, to: this.raft.id }));
  }

  hasReady(): boolean {
    const r = this.raft;
    r.flushBroadcast();
    const soft = this.softState();
    if (soft.lead !== this.prevSoftState.lead || soft.role !== this.prevSoftState.role) return true;
    const hs = r.hardState();
    if (!isEmptyHardState(hs) && !hardStateEqual(hs, this.prevHardState)) return true;
    if (r.log.unstable.snapshot !== undefined || r.log.unstable.entries.length > 0) return true;
    if (r.messages.length > 0 || r.readStates.length > 0) return true;
    return r.log.hasNextCommittedEntries();
  }

  ready(): Ready {
    assert(this.pendingReady === undefined, 'ready() called again before advance()');
    const r = this.raft;
    r.flushBroadcast();
    const soft = this.softState();
    const hs = r.hardState();
    const rd: Ready = {
      ...(soft.lead !== this.prevSoftState.lead || soft.role !== this.prevSoftState.role ? { softState: soft } : {}),
      ...(!hardStateEqual(hs, this.prevHardState) ? { hardState: hs } : {}),
      entries: r.log.unstableEntries(),
      ...(r.log.unstable.snapshot ? { snapshot: r.log.unstable.snapshot } : {}),
      committedEntries: r.log.nextCommittedEntries(),
      messages: r.messages,
      readStates: r.readStates,
    };
    r.messages = [];
    r.readStates = [];
    this.pendingReady = rd;
    return rd;
  }

  /** Acknowledges the last Ready: its state is durable, its messages sent, its entries applied. */
  advance(): void {
    const rd = this.pendingReady;
    assert(rd !== undefined, 'advance() without ready()');
    this.pendingReady = undefined;
    const r = this.raft;
    if (rd.softState) this.prevSoftState = rd.softState;
    if (rd.hardState) this.prevHardState = rd.hardState;
    if (rd.snapshot) {
      r.log.stableSnapTo(rd.snapshot.metadata.index);
      r.log.appliedTo(rd.snapshot.metadata.index);
    }
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1];
      r.log.stableTo(last.index, last.term);
    }
    if (rd.committedEntries.length > 0) {
      r.log.appliedTo(rd.committedEntries[rd.committedEntries.length - 1].index);
      r.reduceUncommittedBytes(rd.committedEntries);
    }
    r.onStable();
  }

  /** The term of the entry at index in this member's log (persisted or not), or undefined when compacted or past the end. */
  logTerm(index: LogIndex): number | undefined {
    return this.raft.log.term(index);
  }

  /** The index of the last entry in this member's log (persisted or not). */
  lastIndex(): LogIndex {
    return this.raft.log.lastIndex();
  }

  /** The current term: an entry proposed now and accepted carries it, or never commits. */
  get term(): Term {
    return this.raft.term;
  }

  status(): Status {
    const r = this.raft;
    let progress: Map<NodeId, ProgressStatus> | undefined;
    if (r.role === 'leader') {
      progress = new Map();
      for (const [id, pr] of r.tracker.progress) progress.set(id, { match: pr.match, next: pr.next, state: pr.state, isLearner: pr.isLearner });
    }
    return {
      id: r.id,
      hardState: r.hardState(),
      softState: this.softState(),
      applied: r.log.applied,
      firstIndex: r.log.firstIndex(),
      lastIndex: r.log.lastIndex(),
      confState: r.confState(),
      leadTransferee: r.leadTransferee,
      ...(progress ? { progress } : {}),
    };
  }
}

/**
 * The first entries of every founding member's log: entry i adds voter i (term 1),
 * so every member's log starts the same way and a member added later learns the
 * founders by replaying it. `context` travels in each conf change (cairn puts the
 * member's name and URLs there).
 */
export function bootstrapEntries(voters: readonly { readonly id: NodeId; readonly context?: Uint8Array }[]): Entry[] {
  assert(voters.length > 0, 'bootstrap needs at least one voter');
  return voters.map(({ id, context }, i) => ({
    term: 1,
    index: i + 1,
    type: 'confChange',
    data: encodeConfChange(context ? { type: 'addNode', nodeId: id, context } : { type: 'addNode', nodeId: id }),
  }));
}

/** Prepares a founding member's empty in-memory storage with bootstrapEntries(), committed. */
export function bootstrapStorage(storage: MemoryStorage, voters: readonly NodeId[]): void {
  assert(storage.lastIndex() === 0, 'bootstrap needs empty storage');
  const entries = bootstrapEntries(voters.map((id) => ({ id })));
  storage.append(entries);
  storage.setHardState({ term: 1, vote: NONE, commit: entries.length });
  // The config these entries produce, so the member can campaign before it applies them.
  storage.setConfState({ voters: [...voters], learners: [] });
}

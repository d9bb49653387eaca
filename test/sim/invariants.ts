import type { Entry, LogIndex, Message, NodeId, ReadState, Snapshot, Term } from '../../src/raft/index.js';
import type { MachineState } from './machine.js';

/** A safety property of Raft did not hold. */
export class SafetyViolation extends Error {
  override readonly name = 'SafetyViolation';
}

function violation(message: string): never {
  throw new SafetyViolation(message);
}

/** What the checker may look at of one member, read-only. */
export interface MemberView {
  readonly id: NodeId;
  /** undefined while crashed */
  readonly alive: boolean;
  readonly role: string;
  readonly term: Term;
  readonly commit: LogIndex;
  readonly isLearner: boolean;
  readonly voters: readonly NodeId[];
  readonly firstIndex: LogIndex;
  readonly lastIndex: LogIndex;
  logTerm(index: LogIndex): Term | undefined;
  /** Durable storage: the term of the entry at index, or undefined when compacted away or absent. */
  durableTerm(index: LogIndex): Term | undefined;
  /** Durable storage: the index of the latest snapshot. */
  durableSnapshotIndex(): LogIndex;
}

interface LeaderWatch {
  readonly term: Term;
  lastIndex: LogIndex;
  lastTerm: Term;
}

/**
 * The Raft safety properties, checked incrementally so that each step costs
 * little however long the run:
 * - Election Safety: at most one leader per term.
 * - Leader Append-Only: a leader never removes or changes its own entries.
 * - Log Matching: an (index, term) names one entry, with one predecessor term,
 *   everywhere (by induction, logs sharing an (index, term) agree up to it).
 * - Leader Completeness: a new leader holds every committed entry.
 * - State Machine Safety: every member applies the same entry at an index,
 *   in order, and a restored snapshot equals what others applied.
 * - Commit is durable on a quorum of voters (learners never count) when a
 *   leader commits it, and a committed index never changes or decreases.
 * - A learner never grants a vote nor campaigns.
 * - ReadIndex: a read state is at least the commit index seen when the read began.
 */
export class Invariants {
  private readonly leaderOfTerm = new Map<Term, NodeId>();
  private readonly leaderWatch = new Map<NodeId, LeaderWatch>();
  /** Every (index, term) ever persisted: its predecessor's term and a fingerprint of its data. */
  private readonly entryIdentity = new Map<string, { prevTerm: Term; fingerprint: string }>();
  /** Each committed index: the entry's term, and the term in which it was first seen committed. */
  private readonly committedTerm = new Map<LogIndex, { term: Term; seenInTerm: Term }>();
  committedIndex: LogIndex = 0;
  /** The entry applied at each index, and the machine hash after it. */
  private readonly appliedAt = new Map<LogIndex, { fingerprint: string; hash: number }>();
  private readonly memoryCommit = new Map<NodeId, LogIndex>();
  private readonly durableCommit = new Map<NodeId, LogIndex>();
  private readonly readFloor = new Map<string, LogIndex>();

  leaderTermCount(): number {
    return this.leaderOfTerm.size;
  }

  // ---- hooks called by the cluster ----------------------------------------------------

  /** After a member persisted a Ready: `prevTermOf` answers from its durable log. */
  onPersist(id: NodeId, entries: readonly Entry[], commit: LogIndex | undefined, prevTermOf: (index: LogIndex) => Term | undefined): void {
    if (commit !== undefined) {
      const before = this.durableCommit.get(id) ?? 0;
      if (commit < before) violation(`${id}: durable commit went back from ${before} to ${commit}`);
      this.durableCommit.set(id, commit);
    }
    for (const e of entries) {
      const prevTerm = prevTermOf(e.index - 1);
      if (prevTerm === undefined) continue; // below a snapshot: nothing to compare
      const key = `${e.index}:${e.term}`;
      const fingerprint = `${e.type}:${hex(e.data)}`;
      const known = this.entryIdentity.get(key);
      if (!known) this.entryIdentity.set(key, { prevTerm, fingerprint });
      else if (known.prevTerm !== prevTerm || known.fingerprint !== fingerprint) {
        violation(
          `Log Matching: entry ${key} on ${id} has previous term ${prevTerm} and data ${fingerprint}, ` +
            `elsewhere previous term ${known.prevTerm} and data ${known.fingerprint}`,
        );
      }
    }
  }

  onApply(id: NodeId, before: MachineState, entry: Entry, after: MachineState): void {
    if (entry.index !== before.applied + 1) violation(`${id} applied ${entry.index} right after ${before.applied}`);
    const fingerprint = `${entry.term}:${entry.type}:${hex(entry.data)}`;
    const known = this.appliedAt.get(entry.index);
    if (!known) this.appliedAt.set(entry.index, { fingerprint, hash: after.hash });
    else if (known.fingerprint !== fingerprint || known.hash !== after.hash) {
      violation(`State Machine Safety: ${id} applied ${fingerprint} at ${entry.index}, another member applied ${known.fingerprint}`);
    }
    const committed = this.committedTerm.get(entry.index);
    if (committed !== undefined && committed.term !== entry.term) {
      violation(`${id} applied an entry of term ${entry.term} at ${entry.index}, but term ${committed.term} was committed there`);
    }
  }

  onRestore(id: NodeId, snapshot: Snapshot, machine: MachineState): void {
    const known = this.appliedAt.get(snapshot.metadata.index);
    if (machine.applied !== snapshot.metadata.index) violation(`${id}: snapshot at ${snapshot.metadata.index} holds a machine at ${machine.applied}`);
    if (known && known.hash !== machine.hash) {
      violation(`State Machine Safety: ${id} restored a snapshot at ${snapshot.metadata.index} that differs from what others applied`);
    }
    if (!known) violation(`${id} restored a snapshot at ${snapshot.metadata.index} that no member ever applied`);
  }

  onSend(sender: MemberView, messages: readonly Message[]): void {
    for (const m of messages) {
      if ((m.type === 'voteResp' || m.type === 'preVoteResp') && !m.reject && sender.isLearner) {
        violation(`learner ${sender.id} granted a ${m.type === 'voteResp' ? 'vote' : 'pre-vote'} to ${m.to} in term ${m.term}`);
      }
    }
  }

  onReadRequested(context: string): void {
    this.readFloor.set(context, this.committedIndex);
  }

  onReadState(id: NodeId, rs: ReadState): void {
    const context = new TextDecoder().decode(rs.context);
    const floor = this.readFloor.get(context);
    if (floor === undefined) violation(`${id} got a read state for unknown request ${context}`);
    if (rs.index < floor) {
      violation(`ReadIndex: read ${context} on ${id} got index ${rs.index}, but ${floor} was committed before it began`);
    }
    if (rs.index > this.committedIndex) violation(`ReadIndex: read ${context} got index ${rs.index} past anything committed (${this.committedIndex})`);
  }

  onCrash(id: NodeId): void {
    this.memoryCommit.delete(id);
    this.leaderWatch.delete(id);
  }

  /** After every step of the schedule. */
  afterStep(members: readonly MemberView[]): void {
    for (const m of members) {
      if (!m.alive) continue;
      this.checkCommit(m, members);
      if (m.isLearner && m.role !== 'follower') violation(`learner ${m.id} is ${m.role} in term ${m.term}`);
      if (m.role === 'leader') this.checkLeader(m);
      else this.leaderWatch.delete(m.id);
    }
  }

  // ---- checks --------------------------------------------------------------------------

  private checkCommit(m: MemberView, members: readonly MemberView[]): void {
    const before = this.memoryCommit.get(m.id) ?? 0;
    if (m.commit < before) violation(`${m.id}: commit went back from ${before} to ${m.commit}`);
    this.memoryCommit.set(m.id, m.commit);
    if (m.commit === before) return;
    for (let i = Math.max(before + 1, m.firstIndex); i <= m.commit; i++) {
      const term = m.logTerm(i);
      if (term === undefined) violation(`${m.id} committed ${i}, which is not in its log`);
      const known = this.committedTerm.get(i);
      if (known === undefined) this.committedTerm.set(i, { term, seenInTerm: m.term });
      else if (known.term !== term) violation(`committed entry ${i} changed: term ${known.term} before, term ${term} on ${m.id}`);
    }
    this.committedIndex = Math.max(this.committedIndex, m.commit);
    if (m.role === 'leader') this.checkDurableQuorum(m, members);
  }

  /** The entry a leader just committed is on the durable storage of a quorum of its voters. */
  private checkDurableQuorum(leader: MemberView, members: readonly MemberView[]): void {
    const index = leader.commit;
    const term = leader.logTerm(index);
    let count = 0;
    for (const v of leader.voters) {
      const member = members.find((x) => x.id === v);
      if (!member) continue;
      if (member.durableTerm(index) === term || member.durableSnapshotIndex() >= index) count++;
    }
    if (count <= leader.voters.length / 2) {
      violation(`leader ${leader.id} committed ${index} (term ${term}) but only ${count} of ${leader.voters.length} voters hold it durably`);
    }
  }

  private checkLeader(m: MemberView): void {
    const holder = this.leaderOfTerm.get(m.term);
    if (holder !== undefined && holder !== m.id) violation(`Election Safety: ${holder} and ${m.id} are both leader in term ${m.term}`);
    const watch = this.leaderWatch.get(m.id);
    if (!watch || watch.term !== m.term) {
      this.leaderOfTerm.set(m.term, m.id);
      this.checkCompleteness(m);
      this.leaderWatch.set(m.id, { term: m.term, lastIndex: m.lastIndex, lastTerm: m.logTerm(m.lastIndex) ?? 0 });
      return;
    }
    if (m.lastIndex < watch.lastIndex || m.logTerm(watch.lastIndex) !== watch.lastTerm) {
      violation(`Leader Append-Only: leader ${m.id} (term ${m.term}) had (${watch.lastIndex}, ${watch.lastTerm}), now ${m.lastIndex} / ${m.logTerm(watch.lastIndex)}`);
    }
    watch.lastIndex = m.lastIndex;
    watch.lastTerm = m.logTerm(m.lastIndex) ?? 0;
  }

  /**
   * Entries committed in an earlier term are in the new leader's log. (A leader of
   * an older term may still be elected late, by delayed votes, after a newer leader
   * committed more: those entries it need not have.)
   */
  private checkCompleteness(leader: MemberView): void {
    for (let i = leader.firstIndex; i <= this.committedIndex; i++) {
      const committed = this.committedTerm.get(i);
      if (committed !== undefined && committed.seenInTerm < leader.term && leader.logTerm(i) !== committed.term) {
        violation(`Leader Completeness: ${leader.id} leads term ${leader.term} without committed entry ${i} (term ${committed.term})`);
      }
    }
  }
}

function hex(data: Uint8Array): string {
  let s = '';
  for (const b of data) s += b.toString(16).padStart(2, '0');
  return s;
}

import { Progress } from './progress.js';
import { committedIndex, hasQuorum, voteResult, type VoteResult } from './quorum.js';
import type { ConfState, LogIndex, NodeId } from './types.js';

/**
 * The membership (voters and learners) and, on a leader, what it knows of each
 * member's log. Invariant: `progress` has exactly one entry per voter and learner,
 * and no id is both.
 */
export class ProgressTracker {
  progress = new Map<NodeId, Progress>();
  voters: NodeId[] = [];
  learners: NodeId[] = [];

  constructor(
    private readonly maxInflightMsgs: number,
    private readonly maxInflightBytes: number,
  ) {}

  private newProgress(next: LogIndex, isLearner: boolean): Progress {
    return new Progress(next, isLearner, this.maxInflightMsgs, this.maxInflightBytes);
  }

  /** Switches to a new membership, keeping what is known of members that stay. */
  applyConfState(cs: ConfState, nextIndex: LogIndex): void {
    const members = new Map<NodeId, Progress>();
    for (const id of [...cs.voters, ...cs.learners]) {
      const isLearner = !cs.voters.includes(id);
      const pr = this.progress.get(id) ?? this.newProgress(nextIndex, isLearner);
      pr.isLearner = isLearner;
      members.set(id, pr);
    }
    this.progress = members;
    this.voters = [...cs.voters];
    this.learners = cs.learners.filter((id) => !cs.voters.includes(id));
  }

  confState(): ConfState {
    return { voters: this.voters.slice(), learners: this.learners.slice() };
  }

  /** Forgets all replication state (a new term): every member is probed from nextIndex. */
  resetAll(nextIndex: LogIndex, self: NodeId, selfMatch: LogIndex): void {
    for (const [id, old] of this.progress) {
      const pr = this.newProgress(nextIndex, old.isLearner);
      if (id === self) pr.match = selfMatch;
      this.progress.set(id, pr);
    }
  }

  isVoter(id: NodeId): boolean {
    return this.voters.includes(id);
  }

  isLearner(id: NodeId): boolean {
    return this.learners.includes(id);
  }

  /** The largest index durably stored on a majority of voters. */
  committed(): LogIndex {
    return committedIndex(this.voters, (id) => this.progress.get(id)?.match ?? 0);
  }

  voteResult(votes: ReadonlyMap<NodeId, boolean>): VoteResult {
    return voteResult(this.voters, votes);
  }

  hasQuorum(acks: (id: NodeId) => boolean): boolean {
    return hasQuorum(this.voters, acks);
  }

  /** CheckQuorum: was a quorum active since the last call? Clears the activity marks for the next round. */
  quorumActiveSinceLastCheck(self: NodeId): boolean {
    const active = this.hasQuorum((id) => id === self || (this.progress.get(id)?.recentActive ?? false));
    for (const [id, pr] of this.progress) if (id !== self) pr.recentActive = false;
    return active;
  }
}

import type { LogIndex, NodeId } from './types.js';

/** A linearizable read waiting on the leader: from itself (local) or forwarded by a follower. */
export interface PendingRead {
  readonly from: NodeId;
  readonly context: Uint8Array;
}

interface Round {
  readonly id: number;
  /** The commit index when the round began: every read in it may be served at this index. */
  readonly index: LogIndex;
  readonly acks: Set<NodeId>;
  readonly reads: PendingRead[];
}

/**
 * ReadIndex batching on the leader. At most one heartbeat round is in flight;
 * reads that arrive meanwhile wait and all go in the next round, so one quorum
 * round serves every read waiting at the moment it starts. The waiting list is
 * bounded by maxPending.
 */
export class ReadOnly {
  private waiting: PendingRead[] = [];
  private round: Round | undefined;
  private nextRoundId = 1;

  constructor(private readonly maxPending: number) {}

  /** Returns false when too many reads are already waiting. */
  add(read: PendingRead): boolean {
    if (this.pendingCount() >= this.maxPending) return false;
    this.waiting.push(read);
    return true;
  }

  pendingCount(): number {
    return this.waiting.length + (this.round?.reads.length ?? 0);
  }

  /** Starts a round if none is in flight and reads are waiting; returns its id. */
  maybeStartRound(commitIndex: LogIndex, self: NodeId): number | undefined {
    if (this.round || this.waiting.length === 0) return undefined;
    this.round = { id: this.nextRoundId++, index: commitIndex, acks: new Set([self]), reads: this.waiting };
    this.waiting = [];
    return this.round.id;
  }

  currentRoundId(): number | undefined {
    return this.round?.id;
  }

  /** Records a heartbeat answer; returns the acks of the current round if it named it. */
  ack(from: NodeId, roundId: number | undefined): ReadonlySet<NodeId> | undefined {
    if (!this.round || roundId !== this.round.id) return undefined;
    this.round.acks.add(from);
    return this.round.acks;
  }

  /** Ends the current round (a quorum confirmed leadership) and returns what it serves. */
  completeRound(): { index: LogIndex; reads: PendingRead[] } | undefined {
    const round = this.round;
    this.round = undefined;
    return round ? { index: round.index, reads: round.reads } : undefined;
  }

  reset(): void {
    this.waiting = [];
    this.round = undefined;
  }
}

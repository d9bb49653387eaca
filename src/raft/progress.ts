import { Inflights } from './inflights.js';
import type { LogIndex } from './types.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/**
 * What a leader knows of one follower's log.
 * - probe: we do not know where the follower's log matches; send one append per
 *   heartbeat interval until one is accepted.
 * - replicate: the follower is known to match at `match`; stream appends
 *   optimistically (advance `next` on send), bounded by the in-flight window.
 * - snapshot: the follower needs entries we no longer have; a snapshot is on its way.
 * Invariant: match < next.
 */
export class Progress {
  match: LogIndex = 0;
  next: LogIndex;
  state: ProgressState = 'probe';
  /** In the snapshot state, the index of the snapshot being sent. */
  pendingSnapshot: LogIndex = 0;
  /** Heard from since the last CheckQuorum round. New members start active so they are not counted against the leader at once. */
  recentActive = true;
  /** In the probe state, an append was sent and we wait for its answer (or a heartbeat answer). */
  probeSent = false;
  readonly inflights: Inflights;

  constructor(
    next: LogIndex,
    public isLearner: boolean,
    maxInflightMsgs: number,
    maxInflightBytes: number,
  ) {
    this.next = next;
    this.inflights = new Inflights(maxInflightMsgs, maxInflightBytes);
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: LogIndex): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** An acknowledgement up to index. Returns whether it was news (not stale). */
  maybeUpdate(index: LogIndex): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /** An append up to index was sent in the replicate state. */
  optimisticUpdate(index: LogIndex): void {
    this.next = index + 1;
  }

  /**
   * The follower rejected an append whose previous index was `rejected`; it
   * suggests `matchHint` as where the logs may match. Returns false when the
   * rejection is stale (answers an append we have moved past).
   */
  maybeDecrTo(rejected: LogIndex, matchHint: LogIndex): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}

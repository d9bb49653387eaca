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
  /**
   * No more appends until an answer: in the probe state, one append is out; in the
   * replicate state, the in-flight window is full. A heartbeat answer clears it, so
   * that a window filled by appends that were all lost cannot stall the follower.
   */
  paused = false;
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
    this.paused = false;
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
      this.paused = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /** An append of entries up to lastIndex (payload bytes) was sent in the replicate state. */
  sentAppend(lastIndex: LogIndex, bytes: number): void {
    this.next = lastIndex + 1;
    this.inflights.add(lastIndex, bytes);
    this.paused = this.inflights.full();
  }

  /** The follower acknowledged up to index in the replicate state: free the window up to it. */
  freeAcked(index: LogIndex): void {
    this.inflights.freeLE(index);
    this.paused = this.inflights.full();
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
    this.paused = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.paused;
      case 'replicate':
        return this.paused;
      case 'snapshot':
        return true;
    }
  }
}

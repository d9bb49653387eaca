import type { Message, NodeId } from '../raft/index.js';

/** Commit notices held for one follower at most; one more sends them all. */
const MAX_HELD_PER_PEER = 16;

/**
 * Holds back a leader's commit notices (appends that carry no entries, only a new
 * commit index) for up to `holdMs`, so they ride along with the next message to the
 * same follower instead of costing a socket write, a wake-up and an answer of
 * their own. Under steady writes the next append follows within a millisecond or
 * two and carries the notice; at idle the notice leaves when the hold ends.
 *
 * Nothing is dropped or reordered, only delayed (as a network may delay it): a held
 * notice goes out in front of the next message to its follower, or with all the
 * others when the hold ends. A notice is never held when its follower waits for it:
 * the follower proposed an entry (its client waits for the follower to apply it)
 * that no commit index sent to it covers yet.
 */
export class CommitNotices {
  private readonly held = new Map<NodeId, Message[]>();
  private timer: NodeJS.Timeout | undefined;
  /** Per follower: the last log index of an entry it proposed through this leader. */
  private readonly proposedUpTo = new Map<NodeId, number>();
  /** Per follower: the highest commit index sent to it. */
  private readonly sentCommit = new Map<NodeId, number>();

  constructor(
    private readonly out: (messages: readonly Message[]) => void,
    private readonly holdMs: number,
  ) {}

  /** A proposal from `peer` was appended to this leader's log, up to `index`. */
  proposedBy(peer: NodeId, index: number): void {
    if (index > (this.proposedUpTo.get(peer) ?? 0)) this.proposedUpTo.set(peer, index);
  }

  /** Sends `messages`, holding the commit notices that nobody waits for. */
  send(messages: readonly Message[]): void {
    const now: Message[] = [];
    for (const m of messages) {
      const held = this.held.get(m.to);
      if (this.holdMs > 0 && isCommitNotice(m) && !this.awaited(m) && (held?.length ?? 0) < MAX_HELD_PER_PEER) {
        if (held) held.push(m);
        else this.held.set(m.to, [m]);
        continue;
      }
      if (held) {
        this.held.delete(m.to);
        for (const h of held) this.emit(now, h);
      }
      this.emit(now, m);
    }
    if (now.length > 0) this.out(now);
    if (this.held.size === 0) this.stopTimer();
    else if (this.timer === undefined) this.timer = setTimeout(() => this.flush(), this.holdMs);
  }

  /** Sends every held notice now. */
  flush(): void {
    this.stopTimer();
    const now: Message[] = [];
    for (const held of this.held.values()) for (const h of held) this.emit(now, h);
    this.held.clear();
    if (now.length > 0) this.out(now);
  }

  /** Forgets what it knows of the followers (this member is no longer their leader) after sending what it holds. */
  reset(): void {
    this.flush();
    this.proposedUpTo.clear();
    this.sentCommit.clear();
  }

  /** Drops what it holds and its timer; sends nothing more. */
  close(): void {
    this.stopTimer();
    this.held.clear();
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private awaited(m: Message): boolean {
    const told = this.sentCommit.get(m.to) ?? 0;
    return (this.proposedUpTo.get(m.to) ?? 0) > told && m.commit > told;
  }

  private emit(into: Message[], m: Message): void {
    into.push(m);
    if ((m.type === 'app' || m.type === 'heartbeat') && m.commit > (this.sentCommit.get(m.to) ?? 0)) {
      this.sentCommit.set(m.to, m.commit);
    }
  }
}

function isCommitNotice(m: Message): boolean {
  return m.type === 'app' && m.entries.length === 0;
}

import { assert } from './assert.js';
import { LogCompactedError, LogUnavailableError, limitSize, type RaftStorage } from './storage.js';
import { Unstable } from './unstable.js';
import type { Entry, LogIndex, Snapshot, Term } from './types.js';

/**
 * The log as the core sees it: the persisted part (storage) followed by the
 * unstable part. Invariant: applied <= committed <= lastIndex().
 */
export class RaftLog {
  readonly unstable: Unstable;
  committed: LogIndex;
  applied: LogIndex;

  constructor(
    readonly storage: RaftStorage,
    private readonly maxApplyBytes: number,
  ) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): LogIndex {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): LogIndex {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): Term {
    const t = this.term(this.lastIndex());
    assert(t !== undefined, 'the last entry always has a term');
    return t;
  }

  /** The last index known to be durable and still part of this log. */
  lastStableIndex(): LogIndex {
    if (this.unstable.snapshot) return 0;
    return Math.min(this.unstable.offset - 1, this.lastIndex());
  }

  /** The term of the entry at index, or undefined when it is compacted or past the end. */
  term(index: LogIndex): Term | undefined {
    const dummy = this.firstIndex() - 1;
    if (index < dummy || index > this.lastIndex()) return undefined;
    const t = this.unstable.maybeTerm(index);
    if (t !== undefined) return t;
    try {
      return this.storage.term(index);
    } catch (err) {
      if (err instanceof LogCompactedError || err instanceof LogUnavailableError) return undefined;
      throw err;
    }
  }

  matchTerm(index: LogIndex, term: Term): boolean {
    return this.term(index) === term;
  }

  isUpToDate(lastIndex: LogIndex, term: Term): boolean {
    const ourTerm = this.lastTerm();
    return term > ourTerm || (term === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * A follower's append: if our log has (index, logTerm), append entries after it
   * (replacing any conflicting suffix) and move commit. Returns the last new index,
   * or undefined when the previous entry does not match.
   */
  maybeAppend(index: LogIndex, logTerm: Term, committed: LogIndex, entries: readonly Entry[]): LogIndex | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNewIndex = index + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      assert(conflict > this.committed, () => `entry ${conflict} conflicts with committed entry (committed ${this.committed})`);
      this.append(entries.slice(conflict - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNewIndex));
    return lastNewIndex;
  }

  append(entries: readonly Entry[]): LogIndex {
    if (entries.length === 0) return this.lastIndex();
    assert(entries[0].index - 1 >= this.committed, () => `append after ${entries[0].index - 1} would overwrite committed ${this.committed}`);
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  /** The index of the first entry whose term differs from ours (0 if none; new entries are a conflict too). */
  private findConflict(entries: readonly Entry[]): LogIndex {
    for (const e of entries) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Fast backtracking: the largest index <= index whose term is <= term, with that
   * term. Every index in between has a term > term, so cannot match the leader.
   */
  findConflictByTerm(index: LogIndex, term: Term): { index: LogIndex; term: Term } {
    for (let i = index; i > 0; i--) {
      const ours = this.term(i);
      if (ours === undefined) return { index: i, term: 0 };
      if (ours <= term) return { index: i, term: ours };
    }
    return { index: 0, term: 0 };
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries.slice();
  }

  hasNextCommittedEntries(): boolean {
    if (this.unstable.snapshot) return false; // apply the snapshot first
    return this.committed > Math.max(this.applied, this.firstIndex() - 1);
  }

  nextCommittedEntries(): Entry[] {
    if (!this.hasNextCommittedEntries()) return [];
    const lo = Math.max(this.applied + 1, this.firstIndex());
    return this.slice(lo, this.committed + 1, this.maxApplyBytes);
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  commitTo(index: LogIndex): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), () => `commit ${index} is past the last index ${this.lastIndex()}`);
    this.committed = index;
  }

  appliedTo(index: LogIndex): void {
    if (index === 0) return;
    assert(index <= this.committed && index >= this.applied, () => `applied ${index} outside [${this.applied}, ${this.committed}]`);
    this.applied = index;
  }

  stableTo(index: LogIndex, term: Term): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapTo(index: LogIndex): void {
    this.unstable.stableSnapTo(index);
  }

  /** Commits up to maxIndex only if that entry is of the given (current) term: Raft's commit rule (§5.4.2). */
  maybeCommit(maxIndex: LogIndex, term: Term): boolean {
    if (maxIndex > this.committed && this.term(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  restore(snapshot: Snapshot): void {
    this.committed = snapshot.metadata.index;
    this.unstable.restore(snapshot);
  }

  /** Entries [lo, hi), at most maxBytes (at least one). Throws LogCompactedError when lo is compacted. */
  slice(lo: LogIndex, hi: LogIndex, maxBytes: number): Entry[] {
    if (lo >= hi) return [];
    if (lo < this.firstIndex()) throw new LogCompactedError(`entries from ${lo}: compacted (first ${this.firstIndex()})`);
    assert(hi <= this.lastIndex() + 1, () => `slice to ${hi} past last index ${this.lastIndex()}`);
    const offset = this.unstable.offset;
    let result: Entry[] = [];
    if (lo < offset) {
      result = this.storage.entries(lo, Math.min(hi, offset), maxBytes);
      // Storage stopped early because of the size limit: do not add unstable entries after a gap.
      if (result.length < Math.min(hi, offset) - lo) return result;
    }
    if (hi > offset) {
      const tail = this.unstable.slice(Math.max(lo, offset), hi);
      result = result.length > 0 ? result.concat(tail) : tail;
    }
    return limitSize(result, maxBytes);
  }
}

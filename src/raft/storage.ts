import { assert } from './assert.js';
import {
  EMPTY_BYTES,
  NONE,
  entryBytes,
  type ConfState,
  type Entry,
  type HardState,
  type LogIndex,
  type Snapshot,
  type Term,
} from './types.js';

/** The requested index is below the first one kept: it was compacted into a snapshot. */
export class LogCompactedError extends Error {
  override readonly name = 'LogCompactedError';
}
/** The requested index is past the last one stored. */
export class LogUnavailableError extends Error {
  override readonly name = 'LogUnavailableError';
}
/** A snapshot older than the one already held was offered. */
export class SnapshotOutOfDateError extends Error {
  override readonly name = 'SnapshotOutOfDateError';
}

/**
 * What the core reads of persisted state. Synchronous: the application keeps the
 * log it persisted in memory too (cairn loads it from LevelDB at start), as etcd does.
 *
 * Contract: the log holds entries [firstIndex(), lastIndex()]; term(firstIndex()-1) is
 * the term of the latest snapshot (or 0) and is always answerable.
 */
export interface RaftStorage {
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries [lo, hi), at most maxBytes in total but always at least one when lo < hi. */
  entries(lo: LogIndex, hi: LogIndex, maxBytes: number): Entry[];
  /** Throws LogCompactedError below firstIndex()-1 and LogUnavailableError past lastIndex(). */
  term(index: LogIndex): Term;
  firstIndex(): LogIndex;
  lastIndex(): LogIndex;
  /** The most recent snapshot. */
  snapshot(): Snapshot;
}

export const EMPTY_CONF_STATE: ConfState = Object.freeze({ voters: [], learners: [] });
export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, vote: NONE, commit: 0 });

export function emptySnapshot(): Snapshot {
  return { metadata: { index: 0, term: 0, confState: EMPTY_CONF_STATE }, data: EMPTY_BYTES };
}

/** Take entries from the front of `entries` while they fit in maxBytes (always at least one). */
export function limitSize(entries: Entry[], maxBytes: number): Entry[] {
  if (entries.length === 0) return entries;
  let size = entryBytes(entries[0]);
  let count = 1;
  while (count < entries.length) {
    size += entryBytes(entries[count]);
    if (size > maxBytes) break;
    count++;
  }
  return count === entries.length ? entries : entries.slice(0, count);
}

/**
 * The in-memory twin of durable storage. The simulator uses it as "the disk" of a
 * node; cairn's LevelDB storage loads into one so the core can read synchronously.
 */
export class MemoryStorage implements RaftStorage {
  private hardState: HardState = EMPTY_HARD_STATE;
  // The membership as of the state machine's applied index (not the snapshot's):
  // a restarted core must start from the config its application last applied.
  private confState: ConfState = EMPTY_CONF_STATE;
  private snap: Snapshot = emptySnapshot();
  // Invariant: log[0] is a dummy entry holding the snapshot's (index, term);
  // log[i] is the entry at index log[0].index + i.
  private log: Entry[] = [{ term: 0, index: 0, type: 'normal', data: EMPTY_BYTES }];

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.confState };
  }

  setHardState(hs: HardState): void {
    this.hardState = hs;
  }

  /** Records the membership the application has applied (persist it with the applied index). */
  setConfState(cs: ConfState): void {
    this.confState = cs;
  }

  private get offset(): LogIndex {
    return this.log[0].index;
  }

  firstIndex(): LogIndex {
    return this.offset + 1;
  }

  lastIndex(): LogIndex {
    return this.offset + this.log.length - 1;
  }

  term(index: LogIndex): Term {
    if (index < this.offset) throw new LogCompactedError(`index ${index} is compacted (first kept ${this.offset})`);
    if (index > this.lastIndex()) throw new LogUnavailableError(`index ${index} is past the last index ${this.lastIndex()}`);
    return this.log[index - this.offset].term;
  }

  entries(lo: LogIndex, hi: LogIndex, maxBytes: number): Entry[] {
    if (lo <= this.offset) throw new LogCompactedError(`entries from ${lo}: compacted (first kept ${this.offset + 1})`);
    assert(hi <= this.lastIndex() + 1, () => `entries to ${hi}: past the last index ${this.lastIndex()}`);
    if (lo >= hi) return [];
    return limitSize(this.log.slice(lo - this.offset, hi - this.offset), maxBytes);
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replaces everything with the snapshot (a follower restoring from the leader's image). */
  applySnapshot(snap: Snapshot): void {
    if (snap.metadata.index <= this.snap.metadata.index) {
      throw new SnapshotOutOfDateError(`snapshot at ${snap.metadata.index} is not newer than ${this.snap.metadata.index}`);
    }
    this.snap = snap;
    this.confState = snap.metadata.confState;
    this.log = [{ term: snap.metadata.term, index: snap.metadata.index, type: 'normal', data: EMPTY_BYTES }];
  }

  /** Records that the state machine image at `index` is `data`; the log is kept until compact(). */
  createSnapshot(index: LogIndex, confState: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.snap.metadata.index) {
      throw new SnapshotOutOfDateError(`snapshot at ${index} is not newer than ${this.snap.metadata.index}`);
    }
    assert(index <= this.lastIndex(), () => `snapshot at ${index} is past the last index ${this.lastIndex()}`);
    this.snap = { metadata: { index, term: this.term(index), confState }, data };
    return this.snap;
  }

  /** Drops entries before `compactIndex`; the entry at compactIndex becomes the dummy. */
  compact(compactIndex: LogIndex): void {
    if (compactIndex <= this.offset) throw new LogCompactedError(`compact to ${compactIndex}: already compacted to ${this.offset}`);
    assert(compactIndex <= this.lastIndex(), () => `compact to ${compactIndex}: past the last index ${this.lastIndex()}`);
    const i = compactIndex - this.offset;
    const dummy: Entry = { term: this.log[i].term, index: compactIndex, type: 'normal', data: EMPTY_BYTES };
    this.log = [dummy, ...this.log.slice(i + 1)];
  }

  /** Appends entries, replacing any stored entries from entries[0].index on. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0].index + entries.length - 1;
    if (last < first) return; // all already compacted
    const kept = first > entries[0].index ? entries.slice(first - entries[0].index) : entries;
    const at = kept[0].index - this.offset;
    assert(at <= this.log.length, () => `append at ${kept[0].index} leaves a gap after ${this.lastIndex()}`);
    this.log = this.log.slice(0, at).concat(kept);
  }
}

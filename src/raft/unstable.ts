import { assert } from './assert.js';
import type { Entry, LogIndex, Snapshot, Term } from './types.js';

/**
 * The tail of the log that has not yet been persisted, and possibly a snapshot
 * that has not yet been persisted. Invariant: entries[i] is at index offset + i;
 * when a snapshot is present, offset === snapshot.metadata.index + 1.
 */
export class Unstable {
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];

  constructor(public offset: LogIndex) {}

  maybeFirstIndex(): LogIndex | undefined {
    return this.snapshot ? this.snapshot.metadata.index + 1 : undefined;
  }

  maybeLastIndex(): LogIndex | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot ? this.snapshot.metadata.index : undefined;
  }

  maybeTerm(index: LogIndex): Term | undefined {
    if (index < this.offset) {
      if (this.snapshot && this.snapshot.metadata.index === index) return this.snapshot.metadata.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || index > last) return undefined;
    return this.entries[index - this.offset].term;
  }

  /** Entries up to (index, term) are now durable. A mismatch means they were replaced meanwhile: keep them. */
  stableTo(index: LogIndex, term: Term): void {
    const t = this.maybeTerm(index);
    if (t === undefined || t !== term || index < this.offset) return;
    this.entries = this.entries.slice(index + 1 - this.offset);
    this.offset = index + 1;
  }

  stableSnapTo(index: LogIndex): void {
    if (this.snapshot && this.snapshot.metadata.index === index) this.snapshot = undefined;
  }

  restore(snapshot: Snapshot): void {
    this.offset = snapshot.metadata.index + 1;
    this.entries = [];
    this.snapshot = snapshot;
  }

  truncateAndAppend(entries: readonly Entry[]): void {
    const from = entries[0].index;
    if (from === this.offset + this.entries.length) {
      this.entries.push(...entries);
    } else if (from <= this.offset) {
      // Replaces everything unstable (and the persisted tail from `from` on).
      this.offset = from;
      this.entries = entries.slice();
    } else {
      this.entries = this.entries.slice(0, from - this.offset).concat(entries);
    }
  }

  /** Entries [lo, hi) from the unstable part. */
  slice(lo: LogIndex, hi: LogIndex): Entry[] {
    assert(lo >= this.offset && hi <= this.offset + this.entries.length && lo <= hi, () => `unstable.slice(${lo}, ${hi}) out of [${this.offset}, ${this.offset + this.entries.length})`);
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

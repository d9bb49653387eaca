import { assert } from './assert.js';
import type { LogIndex } from './types.js';

/**
 * The append messages sent to one follower and not yet acknowledged, as
 * (last index, bytes) pairs in sending order. Bounded by count and by bytes:
 * when full, the leader stops sending to that follower until acks free room.
 */
export class Inflights {
  private readonly indexes: LogIndex[] = [];
  private readonly sizes: number[] = [];
  private bytes = 0;

  constructor(
    private readonly maxCount: number,
    private readonly maxBytes: number, // 0 = no byte limit
  ) {}

  add(lastIndex: LogIndex, bytes: number): void {
    // No check for full here: after a heartbeat answer the leader sends one append past a
    // full window (see Progress.paused), so the count may exceed the limit by one per round.
    assert(this.indexes.length === 0 || lastIndex > this.indexes[this.indexes.length - 1], 'inflights: indexes must increase');
    this.indexes.push(lastIndex);
    this.sizes.push(bytes);
    this.bytes += bytes;
  }

  /** Frees every message whose last index is <= index. */
  freeLE(index: LogIndex): void {
    let n = 0;
    while (n < this.indexes.length && this.indexes[n] <= index) {
      this.bytes -= this.sizes[n];
      n++;
    }
    if (n > 0) {
      this.indexes.splice(0, n);
      this.sizes.splice(0, n);
    }
  }

  full(): boolean {
    return this.indexes.length >= this.maxCount || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
  }

  count(): number {
    return this.indexes.length;
  }

  reset(): void {
    this.indexes.length = 0;
    this.sizes.length = 0;
    this.bytes = 0;
  }
}

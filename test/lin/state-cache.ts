// The checker's memory of configurations already explored: pairs of (set of
// linearized operations, state of the key). It also owns the current set, so
// that its hash can be kept up to date by XOR (Zobrist hashing) instead of being
// recomputed at every step.
//
// Entries live in typed arrays, not one object per entry: a search may keep
// millions of them.

import type { Value } from './history.js';

const CAPACITY_INITIAL = 1024;
/** Bits of the high hash word kept, so a hash is a safe integer (32 + 21 bits). */
const HIGH_MASK = 0x1f_ffff;

export class StateCache {
  /** Entries stored. */
  size = 0;
  private readonly words: number;
  /** The set being explored: bit i is operation i. */
  private readonly current: Uint32Array;
  private currentLow = 0;
  private currentHigh = 0;
  private readonly zobristLow: Uint32Array;
  private readonly zobristHigh: Uint32Array;
  private readonly stateIds = new Map<Value, number>();
  /** Hash -> first entry with that hash; entries chain through `entryNext`. */
  private readonly buckets = new Map<number, number>();
  private capacity = CAPACITY_INITIAL;
  /** Entry i's set is `entrySets[i * words .. (i + 1) * words)`. */
  private entrySets: Uint32Array;
  private entryState: Int32Array;
  private entryNext: Int32Array;

  constructor(operationCount: number) {
    this.words = Math.max(1, Math.ceil(operationCount / 32));
    this.current = new Uint32Array(this.words);
    this.zobristLow = new Uint32Array(operationCount);
    this.zobristHigh = new Uint32Array(operationCount);
    // A fixed seed: runs are reproducible, and the hash is only an index (entries are compared in full).
    let seed = 0x2545f491;
    for (let index = 0; index < operationCount; index++) {
      this.zobristLow[index] = (seed = splitMix32(seed));
      this.zobristHigh[index] = (seed = splitMix32(seed));
    }
    this.entrySets = new Uint32Array(this.capacity * this.words);
    this.entryState = new Int32Array(this.capacity);
    this.entryNext = new Int32Array(this.capacity);
  }

  /**
   * Adds `operation` to the current set and records (set, state). If that pair
   * was already recorded, the set is left unchanged and false is returned.
   */
  addIfAbsent(operation: number, state: Value): boolean {
    const word = operation >>> 5;
    const bit = 1 << (operation & 31);
    this.current[word] |= bit;
    const low = this.currentLow ^ this.zobristLow[operation];
    const high = this.currentHigh ^ this.zobristHigh[operation];
    const stateId = this.internState(state);
    const hash = hashOf(low, high, stateId);
    const first = this.buckets.get(hash);
    for (let entry = first ?? -1; entry !== -1; entry = this.entryNext[entry]) {
      if (this.entryState[entry] === stateId && this.sameSetAs(entry)) {
        this.current[word] &= ~bit;
        return false;
      }
    }
    this.store(stateId, first ?? -1, hash);
    this.currentLow = low;
    this.currentHigh = high;
    return true;
  }

  /** Removes `operation` from the current set (backtracking); the recorded pairs stay. */
  forget(operation: number): void {
    this.current[operation >>> 5] &= ~(1 << (operation & 31));
    this.currentLow ^= this.zobristLow[operation];
    this.currentHigh ^= this.zobristHigh[operation];
  }

  private internState(state: Value): number {
    let id = this.stateIds.get(state);
    if (id === undefined) this.stateIds.set(state, (id = this.stateIds.size));
    return id;
  }

  private sameSetAs(entry: number): boolean {
    const base = entry * this.words;
    for (let word = 0; word < this.words; word++) {
      if (this.entrySets[base + word] !== this.current[word]) return false;
    }
    return true;
  }

  private store(stateId: number, next: number, hash: number): void {
    if (this.size === this.capacity) this.grow();
    const entry = this.size++;
    this.entrySets.set(this.current, entry * this.words);
    this.entryState[entry] = stateId;
    this.entryNext[entry] = next;
    this.buckets.set(hash, entry);
  }

  private grow(): void {
    this.capacity *= 2;
    const sets = new Uint32Array(this.capacity * this.words);
    sets.set(this.entrySets);
    this.entrySets = sets;
    const states = new Int32Array(this.capacity);
    states.set(this.entryState);
    this.entryState = states;
    const next = new Int32Array(this.capacity);
    next.set(this.entryNext);
    this.entryNext = next;
  }
}

function hashOf(setLow: number, setHigh: number, stateId: number): number {
  const low = (setLow ^ splitMix32(stateId)) >>> 0;
  const high = (setHigh ^ splitMix32(stateId ^ 0x5bd1e995)) & HIGH_MASK;
  return high * 0x1_0000_0000 + low;
}

function splitMix32(value: number): number {
  let z = (value + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

// Seeded choices for a chaos run. The schedule and the workload's choices come
// from separate streams derived from one seed, so a printed seed replays the same
// schedule whatever the workload's timing did.

import { SeededRandom } from '../../src/raft/random.js';

export class Random {
  private readonly source: SeededRandom;

  constructor(readonly seed: number) {
    this.source = new SeededRandom(seed);
  }

  /** An independent stream for one purpose (named, so adding a stream never shifts another). */
  fork(purpose: string): Random {
    let h = this.seed >>> 0;
    for (let i = 0; i < purpose.length; i++) h = (Math.imul(h ^ purpose.charCodeAt(i), 0x01000193) + 0x9e3779b9) >>> 0;
    return new Random(h);
  }

  /** A float in [0, 1). */
  float(): number {
    return this.source.next();
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + this.source.nextInt(max - min + 1);
  }

  chance(probability: number): boolean {
    return this.float() < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from nothing');
    return items[this.source.nextInt(items.length)];
  }

  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.source.nextInt(i + 1);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }

  /** Picks by weight: entries with weight 0 are never picked. */
  weighted<T>(entries: readonly (readonly [T, number])[]): T {
    const total = entries.reduce((sum, [, w]) => sum + w, 0);
    let x = this.float() * total;
    for (const [item, weight] of entries) {
      if (x < weight) return item;
      x -= weight;
    }
    return entries[entries.length - 1][0];
  }
}

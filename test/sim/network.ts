import type { Message, NodeId } from '../../src/raft/index.js';

/** A message on the wire: it may be delivered once `deliverAt` <= now, in any order. */
export interface InFlight {
  readonly seq: number;
  readonly message: Message;
  readonly deliverAt: number;
}

/**
 * The simulated network: every message sent sits here until the schedule
 * delivers, drops or duplicates it. Reordering comes from delivering any
 * deliverable message, not just the oldest. Partitions are a set of cut
 * directed links, so one-way partitions are as easy as symmetric ones.
 */
export class Network {
  private inFlight: InFlight[] = [];
  private readonly cut = new Set<string>();
  private nextSeq = 0;
  /** Bound on messages held; past it the oldest are dropped (the real transport drops too). */
  readonly maxInFlight: number;

  constructor(maxInFlight = 5000) {
    this.maxInFlight = maxInFlight;
  }

  get size(): number {
    return this.inFlight.length;
  }

  /** Queues a message; returns the messages dropped to stay within the bound. */
  send(message: Message, deliverAt: number): Message[] {
    this.inFlight.push({ seq: this.nextSeq++, message, deliverAt });
    if (this.inFlight.length <= this.maxInFlight) return [];
    return this.inFlight.splice(0, this.inFlight.length - this.maxInFlight).map((f) => f.message);
  }

  deliverable(now: number): InFlight[] {
    return this.inFlight.filter((f) => f.deliverAt <= now);
  }

  /** Removes one message from the wire (to deliver or to drop it). */
  take(seq: number): Message | undefined {
    const i = this.inFlight.findIndex((f) => f.seq === seq);
    if (i < 0) return undefined;
    return this.inFlight.splice(i, 1)[0].message;
  }

  /** Takes every deliverable message, oldest first. */
  takeAllDeliverable(now: number): Message[] {
    const ready = this.inFlight.filter((f) => f.deliverAt <= now);
    this.inFlight = this.inFlight.filter((f) => f.deliverAt > now);
    return ready.map((f) => f.message);
  }

  all(): readonly InFlight[] {
    return this.inFlight;
  }

  /** Cuts the link from -> to (one way). */
  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}>${to}`);
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.cut.has(`${from}>${to}`);
  }

  /** Cuts every link between the two groups, both ways. */
  partition(a: readonly NodeId[], b: readonly NodeId[]): void {
    for (const x of a) {
      for (const y of b) {
        this.cutLink(x, y);
        this.cutLink(y, x);
      }
    }
  }

  isPartitioned(): boolean {
    return this.cut.size > 0;
  }

  heal(): void {
    this.cut.clear();
  }

  describeCuts(): string {
    return [...this.cut].sort().join(' ');
  }
}

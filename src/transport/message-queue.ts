import type { Message } from '../raft/types.js';

/**
 * The messages waiting to go to one peer, oldest first, bounded in count and in bytes.
 * A ring buffer: push and take are O(1) per message, and memory is allocated once.
 *
 * When full, the newest message is refused (as etcd does): Raft survives the loss, and
 * keeping the older ones keeps what was sent in order without a gap in the middle.
 */
export class MessageQueue {
  private readonly slots: (Message | undefined)[];
  private readonly slotBytes: Float64Array;
  private head = 0;
  private count = 0;
  private bytes = 0;

  constructor(
    readonly maxMessages: number,
    readonly maxBytes: number,
  ) {
    this.slots = new Array<Message | undefined>(maxMessages).fill(undefined);
    this.slotBytes = new Float64Array(maxMessages);
  }

  get length(): number {
    return this.count;
  }

  get queuedBytes(): number {
    return this.bytes;
  }

  /** Appends a message of `messageBytes` (estimated); false, and nothing changes, when either bound would be passed. */
  push(message: Message, messageBytes: number): boolean {
    if (this.count === this.maxMessages) return false;
    // One message alone may exceed the byte bound; otherwise it could never be sent.
    if (this.count > 0 && this.bytes + messageBytes > this.maxBytes) return false;
    const slot = (this.head + this.count) % this.maxMessages;
    this.slots[slot] = message;
    this.slotBytes[slot] = messageBytes;
    this.count++;
    this.bytes += messageBytes;
    return true;
  }

  /** Removes and returns the oldest messages up to about `maxBatchBytes` (at least one when not empty). */
  takeBatch(maxBatchBytes: number): Message[] {
    const batch: Message[] = [];
    let batchBytes = 0;
    while (this.count > 0) {
      const messageBytes = this.slotBytes[this.head];
      if (batch.length > 0 && batchBytes + messageBytes > maxBatchBytes) break;
      batch.push(this.slots[this.head] as Message);
      batchBytes += messageBytes;
      this.slots[this.head] = undefined;
      this.head = (this.head + 1) % this.maxMessages;
      this.count--;
      this.bytes -= messageBytes;
    }
    return batch;
  }

  /** Empties the queue; returns how many messages were dropped. */
  clear(): number {
    const dropped = this.count;
    this.slots.fill(undefined);
    this.head = 0;
    this.count = 0;
    this.bytes = 0;
    return dropped;
  }
}

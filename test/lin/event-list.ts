// The event list of one key's search: call and return events in time order,
// linked so that an operation's events can be taken out and put back in O(1)
// (dancing links), which is what backtracking does at every step.
//
// An operation of unknown outcome returns at +Infinity: it has no return event,
// so nothing ever forces it to have taken effect, and leaving it out is the
// same as placing it after everything else.

import type { Operation } from './history.js';

/**
 * Nodes 0..count-1 are events in time order; `head` and `tail` are sentinels.
 */
export class EventList {
  readonly head: number;
  readonly tail: number;
  /** Local index of the operation an event belongs to. */
  readonly operationIndex: Int32Array;
  /** For a call event: its return event, or -1 if the operation returns at +Infinity. -2 on return events. */
  readonly match: Int32Array;
  readonly next: Int32Array;
  readonly prev: Int32Array;

  constructor(operations: readonly Operation[]) {
    const events: { time: number; isReturn: number; operation: number }[] = [];
    operations.forEach((op, operation) => {
      events.push({ time: op.invokeTime, isReturn: 0, operation });
      if (op.returnTime !== Infinity) events.push({ time: op.returnTime, isReturn: 1, operation });
    });
    // Equal times: calls first, so operations touching at one instant are concurrent.
    events.sort((a, b) => a.time - b.time || a.isReturn - b.isReturn || a.operation - b.operation);
    const count = events.length;
    this.head = count;
    this.tail = count + 1;
    this.operationIndex = new Int32Array(count);
    this.match = new Int32Array(count).fill(-1);
    this.next = new Int32Array(count + 2);
    this.prev = new Int32Array(count + 2);
    const callOf = new Int32Array(operations.length);
    events.forEach((event, node) => {
      this.operationIndex[node] = event.operation;
      if (event.isReturn === 1) {
        this.match[callOf[event.operation]] = node;
        this.match[node] = -2;
      } else {
        callOf[event.operation] = node;
      }
    });
    for (let node = 0; node < count + 2; node++) {
      this.next[node] = node === this.head ? (count > 0 ? 0 : this.tail) : node + 1 === count ? this.tail : node + 1;
      this.prev[node] = node === this.tail ? (count > 0 ? count - 1 : this.head) : node === 0 ? this.head : node - 1;
    }
    this.prev[this.head] = -1;
    this.next[this.tail] = -1;
  }

  isCall(node: number): boolean {
    return this.match[node] !== -2;
  }

  /** Takes a call event and its return event (if any) out of the list. */
  lift(call: number): void {
    this.unlink(call);
    const ret = this.match[call];
    if (ret >= 0) this.unlink(ret);
  }

  /** Undoes `lift(call)`; must be called in the reverse order of the lifts. */
  unlift(call: number): void {
    const ret = this.match[call];
    if (ret >= 0) this.relink(ret);
    this.relink(call);
  }

  private unlink(node: number): void {
    this.next[this.prev[node]] = this.next[node];
    this.prev[this.next[node]] = this.prev[node];
  }

  private relink(node: number): void {
    this.next[this.prev[node]] = node;
    this.prev[this.next[node]] = node;
  }
}

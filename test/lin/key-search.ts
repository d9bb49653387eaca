// The search for a linearization of one key's operations (Wing & Gong, Lowe;
// as Porcupine and Knossos do it), run in slices so the caller can watch its
// budget between them.
//
// The history is a list of call and return events in time order. From a
// configuration (set of linearized operations, state of the key), the search
// picks a call from the front of the list (before the first return), applies
// it to the model and, if legal and the new configuration is unseen, removes
// the operation from the list and starts over at the front. Meeting a return
// event means that operation had to take effect by now and could not: undo the
// last choice and try the next call. Every configuration reached is
// remembered; reaching one again cannot succeed where it failed before.

import assert from 'node:assert/strict';
import { EventList } from './event-list.js';
import type { Operation, Value } from './history.js';
import { IMPOSSIBLE, type Model } from './model.js';
import { StateCache } from './state-cache.js';

/** Where the search for one key got furthest before every path failed. */
export interface Witness {
  /** The longest sequence found that is a legal linearization of what it holds. */
  readonly linearized: readonly Operation[];
  /** The key's value after each operation of `linearized`. */
  readonly statesAfter: readonly Value[];
  /** The key's value after all of `linearized`. */
  readonly state: Value;
  /**
   * The operation with the earliest return not yet linearized: it had to
   * take effect next, or after one of `pending`, and none of that worked.
   */
  readonly stuck: Operation;
  /** The other operations invoked before `stuck` returned and not yet linearized. */
  readonly pending: readonly Operation[];
}

export type SearchResult = { readonly verdict: 'ok' } | { readonly verdict: 'illegal'; readonly witness: Witness };

interface Frame {
  readonly call: number;
  readonly stateBefore: Value;
  /** Taken without trying alternatives (see `findForcedCall`): when it fails, so does the frame below. */
  readonly forced: boolean;
}

export class KeySearch {
  /** Configurations remembered so far; the caller bounds it. */
  get statesCount(): number {
    return this.cache.size;
  }

  /** The operations searched: failed ones, and unknown ones that cannot change the state, constrain nothing. */
  readonly operations: readonly Operation[];
  private readonly list: EventList;
  private readonly cache: StateCache;
  /** Per operation: `model.isReadOnly`. */
  private readonly readOnly: Uint8Array;
  /** Returned operations not yet linearized; all must be, unknown ones may be left out. */
  private returnsLeft: number;
  private readonly stack: Frame[] = [];
  private state: Value;
  private node: number;
  /** `node` is the front of a configuration not yet searched for a forced call. */
  private fresh = true;
  private best: Witness | undefined;

  constructor(
    operations: readonly Operation[],
    private readonly model: Model,
  ) {
    this.operations = operations.filter((op) => op.status === 'ok' || (op.status === 'unknown' && !model.isReadOnly(op)));
    this.list = new EventList(this.operations);
    this.cache = new StateCache(this.operations.length);
    this.readOnly = Uint8Array.from(this.operations, (op) => (model.isReadOnly(op) ? 1 : 0));
    this.returnsLeft = this.operations.filter((op) => op.returnTime !== Infinity).length;
    this.state = model.initialState;
    this.node = this.list.next[this.list.head];
  }

  /** Runs at most `stepsMax` steps; `undefined` means not finished yet. */
  advance(stepsMax: number): SearchResult | undefined {
    const list = this.list;
    for (let step = 0; step < stepsMax; step++) {
      if (this.returnsLeft === 0) return { verdict: 'ok' };
      if (this.fresh) {
        this.fresh = false;
        const forced = this.findForcedCall();
        if (forced !== -1) {
          if (!this.tryLinearize(forced, true) && !this.backtrack()) return this.illegal();
          continue;
        }
      }
      const node = this.node;
      if (list.isCall(node)) {
        if (!this.tryLinearize(node, false)) this.node = list.next[node];
        continue;
      }
      // A return event: its operation had to be linearized by now.
      if (this.best === undefined || this.stack.length > this.best.linearized.length) this.best = this.witnessAt(node);
      if (!this.backtrack()) return this.illegal();
    }
    return undefined;
  }

  /**
   * A read-only call that is legal now can be linearized now without loss: if
   * any linearization exists from here, moving that call to the front of it
   * keeps it legal (the state is unchanged, and every operation that completed
   * before the call was invoked is already linearized, since its return event
   * would come first in the list). So it is taken with no alternatives tried.
   */
  private findForcedCall(): number {
    const list = this.list;
    for (let node = list.next[list.head]; list.isCall(node); node = list.next[node]) {
      const operation = list.operationIndex[node];
      if (this.readOnly[operation] === 1 && this.model.step(this.state, this.operations[operation]) !== IMPOSSIBLE) return node;
    }
    return -1;
  }

  private tryLinearize(call: number, forced: boolean): boolean {
    const operation = this.list.operationIndex[call];
    const after = this.model.step(this.state, this.operations[operation]);
    if (after === IMPOSSIBLE || !this.cache.addIfAbsent(operation, after)) return false;
    this.stack.push({ call, stateBefore: this.state, forced });
    this.state = after;
    this.list.lift(call);
    if (this.list.match[call] >= 0) this.returnsLeft--;
    this.node = this.list.next[this.list.head];
    this.fresh = true;
    return true;
  }

  /** Undoes choices until one with untried alternatives; false if none is left. */
  private backtrack(): boolean {
    this.fresh = false;
    for (;;) {
      const top = this.stack.pop();
      if (top === undefined) return false;
      this.cache.forget(this.list.operationIndex[top.call]);
      this.state = top.stateBefore;
      this.list.unlift(top.call);
      if (this.list.match[top.call] >= 0) this.returnsLeft++;
      if (!top.forced) {
        this.node = this.list.next[top.call];
        return true;
      }
    }
  }

  private illegal(): SearchResult {
    // The first configuration to fail fails at a return event, which records a witness.
    assert.ok(this.best !== undefined, 'an exhausted search has met a return event');
    return { verdict: 'illegal', witness: this.best };
  }

  private witnessAt(returnNode: number): Witness {
    const { list, operations, stack, state } = this;
    const linearized = stack.map((frame) => operations[list.operationIndex[frame.call]]);
    const statesAfter = stack.map((_, index) => (index + 1 < stack.length ? stack[index + 1].stateBefore : state));
    const stuckIndex = list.operationIndex[returnNode];
    const pending: Operation[] = [];
    for (let node = list.next[list.head]; node !== returnNode; node = list.next[node]) {
      if (list.isCall(node) && list.operationIndex[node] !== stuckIndex) pending.push(operations[list.operationIndex[node]]);
    }
    return { linearized, statesAfter, state, stuck: operations[stuckIndex], pending };
  }
}

// Sequential specifications of one key. The checker splits a history by key
// (linearizability is compositional), so a model only ever sees one key.
//
// All three models share one step function: they differ in which operations
// exist and in what an unwritten key holds.
// - register: Jepsen's etcd register (read = get, write = put, cas); starts absent (nil).
// - cairn-kv: what the chaos suite does through cairn's HTTP API: get, put,
//   delete, and compare-and-set (put if the key holds `expected`, or if it is
//   absent when `expected` is null); starts absent.
// - course-kv: the course key-value service (get, put, append); an absent key
//   reads as "".

import type { Operation, OperationKind, Value } from './history.js';

/** Returned by `step` when the operation's result contradicts the state. */
export const IMPOSSIBLE: unique symbol = Symbol('impossible');

export interface Model {
  readonly name: string;
  readonly kinds: readonly OperationKind[];
  readonly initialState: Value;
  /**
   * The state after `op` takes effect in `state`, or IMPOSSIBLE. Pure and
   * cheap: the search calls it millions of times. An operation of unknown
   * outcome is stepped as "it took effect"; "it never did" is the checker's
   * business (it may leave the operation out).
   */
  step(state: Value, op: Operation): Value | typeof IMPOSSIBLE;
  /**
   * True if `op` leaves the state unchanged in every state where it is
   * possible (a get, an observed failed comparison). The checker linearizes
   * such an operation as soon as it is possible, without trying alternatives.
   */
  isReadOnly(op: Operation): boolean;
}

function step(state: Value, op: Operation): Value | typeof IMPOSSIBLE {
  const request = op.request;
  const known = op.status === 'ok';
  switch (request.kind) {
    case 'get':
      return !known || op.result === state ? state : IMPOSSIBLE;
    case 'put':
      return request.value;
    case 'delete':
      return !known || op.result === undefined || op.result === (state !== null) ? null : IMPOSSIBLE;
    case 'cas': {
      const holds = state === request.expected;
      // An unknown cas that took effect must have succeeded: one whose comparison failed had no effect at all.
      const succeeded = known ? op.result === true : true;
      if (holds !== succeeded) return IMPOSSIBLE;
      return holds ? request.value : state;
    }
    case 'append':
      return (state === null ? '' : String(state)) + request.value;
  }
}

function isReadOnly(op: Operation): boolean {
  switch (op.request.kind) {
    case 'get':
      return true;
    case 'cas':
    case 'delete':
      return op.status === 'ok' && op.result === false;
    default:
      return false;
  }
}

export const registerModel: Model = { name: 'register', kinds: ['get', 'put', 'cas'], initialState: null, step, isReadOnly };

export const cairnKvModel: Model = { name: 'cairn-kv', kinds: ['get', 'put', 'delete', 'cas'], initialState: null, step, isReadOnly };

export const courseKvModel: Model = { name: 'course-kv', kinds: ['get', 'put', 'append'], initialState: '', step, isReadOnly };

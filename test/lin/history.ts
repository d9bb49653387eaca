// A history of operations on a key-value store as its clients saw them: each
// operation was invoked at some time and then either returned (ok), definitely
// did not happen (fail), or was left with an unknown outcome (a timeout, a lost
// connection, Jepsen's :info).
//
// Times are any increasing numbers (milliseconds of a monotonic clock, or line
// numbers of a log); only their order matters. An operation that returned at t
// and one invoked at the same t are concurrent, never ordered: a tie can hide a
// violation but cannot invent one.

import assert from 'node:assert/strict';
import type { Model } from './model.js';

/** A value a key holds. `null` is "absent": never written, or deleted. */
export type Value = string | number | null;

export type ProcessId = number | string;

/** What a client asked for; each operation touches one key. */
export type Request =
  | { readonly kind: 'get'; readonly key: string }
  | { readonly kind: 'put'; readonly key: string; readonly value: Value }
  | { readonly kind: 'delete'; readonly key: string }
  /** Sets `value` if the key holds `expected` (`null`: if the key is absent). */
  | { readonly kind: 'cas'; readonly key: string; readonly expected: Value; readonly value: Value }
  /** Appends to the key's string value. */
  | { readonly kind: 'append'; readonly key: string; readonly value: string };

export type OperationKind = Request['kind'];

/**
 * What an ok operation answered: for get the value read (`null`: absent), for
 * cas whether the comparison held, for delete optionally whether the key
 * existed; `undefined` otherwise.
 */
export type Result = Value | boolean | undefined;

/** `unknown`: it may have taken effect at any time after its invocation, or never. */
export type Status = 'ok' | 'fail' | 'unknown';

export interface Operation {
  /** Invariant: `history.operations[id] === this`. */
  readonly id: number;
  readonly process: ProcessId;
  readonly request: Request;
  readonly status: Status;
  /** Meaningful only when `status` is 'ok'. */
  readonly result: Result;
  readonly invokeTime: number;
  /** +Infinity iff `status` is 'unknown': such an operation is pending until the end of time. */
  readonly returnTime: number;
}

export interface History {
  /** The sequential specification each key's operations are checked against. */
  readonly model: Model;
  readonly operations: readonly Operation[];
}

/** Asserts what the checker relies on; a broken invariant is a bug in a recorder or parser. */
export function assertValidHistory(history: History): void {
  const kinds = new Set<OperationKind>(history.model.kinds);
  history.operations.forEach((op, index) => {
    const where = `operation ${index} (${formatOperation(op)})`;
    assert.equal(op.id, index, `${where}: id must be its index`);
    assert.ok(kinds.has(op.request.kind), `${where}: the ${history.model.name} model has no ${op.request.kind}`);
    assert.ok(Number.isFinite(op.invokeTime), `${where}: invokeTime must be finite`);
    assert.equal(op.status === 'unknown', op.returnTime === Infinity, `${where}: returnTime is +Infinity iff the outcome is unknown`);
    assert.ok(op.returnTime >= op.invokeTime, `${where}: returns before it is invoked`);
    if (op.status === 'ok') assertResultFits(op, where);
  });
}

/** Asserts that an ok operation's result has the type its kind returns. */
export function assertResultFits(op: Operation, where: string): void {
  const { kind } = op.request;
  const { result } = op;
  if (kind === 'get') assert.ok(result !== undefined && typeof result !== 'boolean', `${where}: a get returns a value or null`);
  else if (kind === 'cas') assert.ok(typeof result === 'boolean', `${where}: a cas returns whether it succeeded`);
  else if (kind === 'delete') assert.ok(result === undefined || typeof result === 'boolean', `${where}: a delete returns nothing or whether the key existed`);
  else assert.equal(result, undefined, `${where}: a ${kind} returns nothing`);
}

/** A history of `operations` in the order given, numbered from 0; validated. */
export function historyOf(model: Model, operations: readonly Omit<Operation, 'id'>[]): History {
  const history: History = { model, operations: operations.map((op, id) => ({ ...op, id })) };
  assertValidHistory(history);
  return history;
}

/** Operations by key, each list in history order. Keys are checked independently. */
export function partitionByKey(operations: readonly Operation[]): Map<string, Operation[]> {
  const byKey = new Map<string, Operation[]>();
  for (const op of operations) {
    let list = byKey.get(op.request.key);
    if (list === undefined) byKey.set(op.request.key, (list = []));
    list.push(op);
  }
  return byKey;
}

export function formatValue(value: Value): string {
  return value === null ? 'absent' : JSON.stringify(value);
}

/** One line for a person: `#12 p3 cas "1"->"2" succeeded [7..9]`. */
export function formatOperation(op: Operation): string {
  const returned = op.returnTime === Infinity ? '∞' : formatTime(op.returnTime);
  const process = typeof op.process === 'number' ? `p${op.process}` : op.process;
  return `#${op.id} ${process} ${formatRequest(op.request)} ${formatOutcome(op)} [${formatTime(op.invokeTime)}..${returned}]`;
}

function formatTime(time: number): string {
  return Number.isInteger(time) ? String(time) : time.toFixed(3);
}

function formatRequest(request: Request): string {
  switch (request.kind) {
    case 'get':
    case 'delete':
      return request.kind;
    case 'put':
    case 'append':
      return `${request.kind} ${formatValue(request.value)}`;
    case 'cas':
      return `cas ${formatValue(request.expected)}->${formatValue(request.value)}`;
  }
}

function formatOutcome(op: Operation): string {
  if (op.status === 'fail') return 'failed';
  if (op.status === 'unknown') return 'outcome unknown';
  switch (op.request.kind) {
    case 'get':
      return `read ${formatValue(op.result as Value)}`;
    case 'cas':
      return op.result === true ? 'succeeded' : 'compare failed';
    case 'delete':
      return op.result === undefined ? 'ok' : op.result === true ? 'ok (existed)' : 'ok (was absent)';
    default:
      return 'ok';
  }
}

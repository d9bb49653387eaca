// Records a history while a test drives a store: `invoke` just before sending
// a request, then exactly one of `ok` (with what the store answered), `fail`
// (the request certainly did not take effect) or `unknown` (a timeout, a lost
// connection: it may take effect at any later time, or never) once that is
// known. An operation still pending when `history()` is taken counts as
// unknown.
//
// Times come from a monotonic clock (process.hrtime, in milliseconds since the
// recorder was made), so a wall-clock step cannot reorder operations.

import assert from 'node:assert/strict';
import { assertResultFits, formatOperation, type History, type Operation, type ProcessId, type Request, type Result, type Value } from './history.js';
import { cairnKvModel, type Model } from './model.js';

/** Identifies one recorded operation; returned by `invoke`. */
export type OperationHandle = number & { readonly __operationHandle: unique symbol };

export interface RecorderOptions {
  /** The model the history is checked against. Default: cairn-kv. */
  readonly model?: Model;
  /** Milliseconds; must never go backwards. Default: process.hrtime since construction. */
  readonly clock?: () => number;
  /** Operations recorded before `invoke` refuses more (a bound on memory). Default 1,000,000. */
  readonly operationsMax?: number;
}

const OPERATIONS_MAX_DEFAULT = 1_000_000;

export class HistoryRecorder {
  private readonly model: Model;
  private readonly clock: () => number;
  private readonly operationsMax: number;
  private readonly operations: Operation[] = [];
  private readonly pending = new Set<number>();
  private lastTime = -Infinity;

  constructor(options: RecorderOptions = {}) {
    this.model = options.model ?? cairnKvModel;
    this.operationsMax = options.operationsMax ?? OPERATIONS_MAX_DEFAULT;
    if (options.clock !== undefined) {
      this.clock = options.clock;
    } else {
      const start = process.hrtime.bigint();
      this.clock = () => Number(process.hrtime.bigint() - start) / 1e6;
    }
  }

  /** Call just before the request is sent. */
  invoke(process: ProcessId, request: Request): OperationHandle {
    assert.ok(this.operations.length < this.operationsMax, `more than ${this.operationsMax} operations recorded`);
    assert.ok(this.model.kinds.includes(request.kind), `the ${this.model.name} model has no ${request.kind}`);
    const id = this.operations.length;
    this.operations.push({ id, process, request: { ...request }, status: 'unknown', result: undefined, invokeTime: this.now(), returnTime: Infinity });
    this.pending.add(id);
    return id as OperationHandle;
  }

  /**
   * The store answered: `result` is the value read for a get (null: absent),
   * whether it succeeded for a cas, optionally whether the key existed for a
   * delete, and nothing for a put.
   */
  ok(op: OperationHandle, result?: Value | boolean): void {
    const resolved: Operation = { ...this.resolve(op), status: 'ok', result, returnTime: this.now() };
    assertResultFits(resolved, formatOperation(resolved));
    this.operations[op] = resolved;
  }

  /** The request certainly did not take effect (e.g. refused before it reached the log). */
  fail(op: OperationHandle): void {
    this.operations[op] = { ...this.resolve(op), status: 'fail', returnTime: this.now() };
  }

  /** Whether the request took effect is unknown: it may at any time from its invocation on, or never. */
  unknown(op: OperationHandle): void {
    this.resolve(op);
  }

  /** A snapshot; operations still pending are unknown. */
  history(): History {
    return { model: this.model, operations: [...this.operations] };
  }

  private resolve(op: OperationHandle): Operation {
    assert.ok(this.pending.delete(op), `operation ${op} is not pending`);
    return this.operations[op];
  }

  private now(): number {
    const time = this.clock();
    assert.ok(time >= this.lastTime, `the clock went backwards: ${time} after ${this.lastTime}`);
    this.lastTime = time;
    return time;
  }
}

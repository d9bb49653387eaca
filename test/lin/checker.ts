// A linearizability checker after Wing & Gong and Lowe ("Testing for
// linearizability", 2017), as Porcupine and Knossos run it.
//
// Linearizability is compositional (P-compositional for a store of independent
// keys): a history is linearizable iff each key's sub-history is. So each key
// is searched on its own (key-search.ts), within its own budget of time and of
// remembered configurations; past either, that key's answer is 'unknown',
// never a guess. One key found not linearizable settles the whole history.

import { assertValidHistory, partitionByKey, type History, type Operation } from './history.js';
import { explainViolation } from './explain.js';
import { KeySearch, type Witness } from './key-search.js';

export interface CheckOptions {
  /** Search time one key may take before its answer is 'unknown'. Default 10,000 ms. */
  readonly budgetMs?: number;
  /** Search time the whole history may take; keys not settled by then are 'unknown'. Default: unbounded (only `budgetMs` per key). */
  readonly totalBudgetMs?: number;
  /** Configurations one key's search may remember, which bounds its memory. Default 4,000,000. */
  readonly statesMax?: number;
}

export interface CheckResult {
  readonly verdict: 'linearizable' | 'not-linearizable' | 'unknown';
  /** Keys in the history. */
  readonly keys: number;
  /** Operations in the history, failed ones excluded (they did not happen). */
  readonly ops: number;
  /** The key found not linearizable (verdict 'not-linearizable'). */
  readonly failingKey?: string;
  /** Keys whose search ran out of budget (verdict 'unknown'). */
  readonly unknownKeys?: readonly string[];
  /** For a person: the offending operations, or which keys ran out of budget. */
  readonly explanation?: string;
}

const BUDGET_MS_DEFAULT = 10_000;
const STATES_MAX_DEFAULT = 4_000_000;
/** Search steps between two looks at the clock and at the cache size. */
const SLICE_STEPS = 10_000;

type KeyOutcome = { readonly verdict: 'ok' } | { readonly verdict: 'illegal'; readonly witness: Witness } | { readonly verdict: 'unknown'; readonly reason: string };

export function checkHistory(history: History, options: CheckOptions = {}): CheckResult {
  assertValidHistory(history);
  const budgetMs = options.budgetMs ?? BUDGET_MS_DEFAULT;
  const statesMax = options.statesMax ?? STATES_MAX_DEFAULT;
  const totalDeadline = performance.now() + (options.totalBudgetMs ?? Infinity);
  const byKey = partitionByKey(history.operations);
  const counts = { keys: byKey.size, ops: history.operations.filter((op) => op.status !== 'fail').length };
  // Small keys first: a violation in a quick key is found before a hard key spends its budget.
  const keys = [...byKey].sort((a, b) => a[1].length - b[1].length);
  const unknown: { key: string; reason: string }[] = [];
  for (const [key, operations] of keys) {
    const deadline = Math.min(performance.now() + budgetMs, totalDeadline);
    const outcome = searchKey(new KeySearch(operations, history.model), deadline, statesMax);
    if (outcome.verdict === 'illegal') {
      return { verdict: 'not-linearizable', ...counts, failingKey: key, explanation: explainViolation(key, history.model, outcome.witness) };
    }
    if (outcome.verdict === 'unknown') unknown.push({ key, reason: outcome.reason });
  }
  if (unknown.length === 0) return { verdict: 'linearizable', ...counts };
  return { verdict: 'unknown', ...counts, unknownKeys: unknown.map(({ key }) => key), explanation: explainUnknown(unknown, byKey) };
}

function searchKey(search: KeySearch, deadline: number, statesMax: number): KeyOutcome {
  for (;;) {
    if (performance.now() >= deadline) return { verdict: 'unknown', reason: `out of time after ${search.statesCount} configurations` };
    if (search.statesCount > statesMax) return { verdict: 'unknown', reason: `more than ${statesMax} configurations remembered` };
    const result = search.advance(SLICE_STEPS);
    if (result !== undefined) return result;
  }
}

/** Keys listed before "and N more" in an unknown verdict. */
const UNKNOWN_KEYS_SHOWN = 5;

function explainUnknown(unknown: readonly { key: string; reason: string }[], byKey: ReadonlyMap<string, readonly Operation[]>): string {
  const lines = [`The search ran out of budget on ${unknown.length} key(s); no violation was found in the others:`];
  for (const { key, reason } of unknown.slice(0, UNKNOWN_KEYS_SHOWN)) {
    lines.push(`  key ${JSON.stringify(key)} (${byKey.get(key)?.length ?? 0} operations): ${reason}`);
  }
  if (unknown.length > UNKNOWN_KEYS_SHOWN) lines.push(`  and ${unknown.length - UNKNOWN_KEYS_SHOWN} more`);
  return lines.join('\n');
}

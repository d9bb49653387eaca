// Turns the furthest point a failed search reached into a report a person can
// check by hand: the last few operations of the longest legal order found, the
// value they leave, the operation that then had to take effect and could not,
// and the other candidates that were tried instead.

import { formatOperation, formatValue, type Operation, type Value } from './history.js';
import type { Witness } from './key-search.js';
import { IMPOSSIBLE, type Model } from './model.js';

/** Operations of the legal prefix shown before the stuck one. */
const PREFIX_SHOWN = 8;
/** Other candidates shown. */
const PENDING_SHOWN = 8;

export function explainViolation(key: string, model: Model, witness: Witness): string {
  const { linearized, statesAfter, state, stuck, pending } = witness;
  const lines = [`key ${JSON.stringify(key)} is not linearizable (${model.name} model, starting ${formatValue(model.initialState)}).`];
  const shownFrom = Math.max(0, linearized.length - PREFIX_SHOWN);
  if (linearized.length === 0) {
    lines.push('No operation can be placed first.');
  } else {
    const last = shownFrom > 0 ? `; the last ${linearized.length - shownFrom}` : '';
    lines.push(`The longest legal order found has ${linearized.length} operations${last} (=> the value after each):`);
    for (let index = shownFrom; index < linearized.length; index++) {
      lines.push(`  ${formatOperation(linearized[index])} => ${formatValue(statesAfter[index])}`);
    }
  }
  lines.push(`The key then holds ${formatValue(state)}.`);
  const reason = whyImpossible(model, state, stuck) ?? 'it could take effect here, yet no order of the rest works after it';
  lines.push(`Next, ${formatOperation(stuck)} had to take effect (it returned first of those left), and cannot: ${reason}.`);
  const definite = pending.filter((op) => op.status === 'ok');
  if (definite.length > 0) {
    lines.push('Each other operation that could go before it was tried, and none leads to a legal order:');
    for (const op of definite.slice(0, PENDING_SHOWN)) lines.push(`  ${formatOperation(op)}: ${whyImpossible(model, state, op) ?? 'possible here, but a dead end'}`);
    if (definite.length > PENDING_SHOWN) lines.push(`  and ${definite.length - PENDING_SHOWN} more`);
  }
  const unknownCount = pending.length - definite.length;
  if (unknownCount > 0) lines.push(`(${unknownCount} operation(s) of unknown outcome were pending too, and were tried.)`);
  return lines.join('\n');
}

/** Why `op` cannot take effect when the key holds `state`; `undefined` if it can. */
export function whyImpossible(model: Model, state: Value, op: Operation): string | undefined {
  if (model.step(state, op) !== IMPOSSIBLE) return undefined;
  const holds = `the key holds ${formatValue(state)}`;
  const request = op.request;
  switch (request.kind) {
    case 'get':
      return `it read ${formatValue(op.result as Value)} but ${holds}`;
    case 'delete':
      return op.result === true ? `it found the key, but ${holds}` : `it found the key absent, but ${holds}`;
    case 'cas': {
      const expected = formatValue(request.expected);
      if (op.status === 'unknown') return `it can only take effect where the key holds ${expected}, but ${holds}`;
      return op.result === true ? `it succeeded, so the key held ${expected}, but ${holds}` : `its comparison failed, so the key did not hold ${expected}, but ${holds}`;
    }
    default:
      return `(a ${request.kind} is always possible; the model disagrees)`;
  }
}

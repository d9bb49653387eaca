// Randomized tests of the checker. fast-check prints the seed and path of a
// failing run; to replay one, pass them to that fc.assert:
//   fc.assert(property, { seed: <seed>, path: '<path>' })

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkHistory } from './checker.js';
import { historyOf, type Operation, type Request, type Value } from './history.js';
import { cairnKvModel, IMPOSSIBLE, type Model } from './model.js';

type Entry = Omit<Operation, 'id'>;

/** Time between two linearization points of a generated execution; windows reach several neighbours. */
const POINT_SPACING = 100;
const WINDOW_MAX = 250;

const stepArbitrary = fc.record({
  key: fc.constantFrom('a', 'b'),
  kind: fc.constantFrom('get', 'get', 'put', 'put', 'delete', 'cas'),
  /** For a cas: compare with the current value, with absent, or with some value written earlier. */
  expected: fc.constantFrom('current', 'absent', 'earlier'),
  earlier: fc.nat(),
  /** For a delete: whether the client reports if the key existed. */
  reportsExisted: fc.boolean(),
  status: fc.constantFrom('ok', 'ok', 'ok', 'unknown', 'fail'),
  before: fc.integer({ min: 0, max: WINDOW_MAX }),
  after: fc.integer({ min: 0, max: WINDOW_MAX }),
});
type Step = typeof stepArbitrary extends fc.Arbitrary<infer T> ? T : never;

/**
 * Runs `steps` one after another against a map (step i takes effect at time
 * i * POINT_SPACING, unless it failed) and records each with a random window
 * around that point: a linearizable history by construction.
 */
function executeSequentially(steps: readonly Step[]): Entry[] {
  const store = new Map<string, Value>();
  const written: Value[] = [];
  return steps.map((step, index): Entry => {
    const point = index * POINT_SPACING;
    const current = store.get(step.key) ?? null;
    const value = `v${index}`;
    const expected = step.expected === 'current' ? current : step.expected === 'absent' || written.length === 0 ? null : written[step.earlier % written.length];
    const request: Request =
      step.kind === 'get' || step.kind === 'delete' ? { kind: step.kind, key: step.key } : step.kind === 'put' ? { kind: 'put', key: step.key, value } : { kind: 'cas', key: step.key, expected, value };
    let result: Value | boolean | undefined = undefined;
    if (step.status !== 'fail') {
      if (request.kind === 'get') result = current;
      if (request.kind === 'delete') result = step.reportsExisted ? current !== null : undefined;
      if (request.kind === 'delete') store.delete(step.key);
      if (request.kind === 'put' || (request.kind === 'cas' && expected === current)) store.set(step.key, value);
      if (request.kind === 'put' || request.kind === 'cas') written.push(value);
      if (request.kind === 'cas') result = expected === current;
    }
    const invokeTime = point - step.before;
    if (step.status === 'unknown') return { process: index, request, status: 'unknown', result: undefined, invokeTime, returnTime: Infinity };
    return { process: index, request, status: step.status === 'fail' ? 'fail' : 'ok', result, invokeTime, returnTime: point + step.after };
  });
}

describe('histories from a sequential execution', () => {
  const steps = fc.array(stepArbitrary, { minLength: 1, maxLength: 30 });

  it('are linearizable, whatever windows contain their linearization points', () => {
    fc.assert(
      fc.property(steps, (generated) => {
        const result = checkHistory(historyOf(cairnKvModel, executeSequentially(generated)), { budgetMs: 5_000 });
        expect(result.verdict, result.explanation).toBe('linearizable');
      }),
      { numRuns: 200 },
    );
  });

  it('are not linearizable once one read returns a value never written', () => {
    fc.assert(
      fc.property(steps, fc.nat(), (generated, choice) => {
        const entries = executeSequentially(generated);
        const reads = entries.flatMap((entry, index) => (entry.request.kind === 'get' && entry.status === 'ok' ? [index] : []));
        fc.pre(reads.length > 0);
        const changed = reads[choice % reads.length];
        entries[changed] = { ...entries[changed], result: 'never-written' };
        const result = checkHistory(historyOf(cairnKvModel, entries), { budgetMs: 5_000 });
        expect(result.verdict).toBe('not-linearizable');
        expect(result.failingKey).toBe(entries[changed].request.key);
      }),
      { numRuns: 200 },
    );
  });
});

/** Linearizability by its definition: try every order that respects real time. Exponential; for a handful of operations. */
function linearizableByBruteForce(model: Model, operations: readonly Operation[]): boolean {
  const search = (remaining: readonly Operation[], state: Value): boolean => {
    if (remaining.every((op) => op.returnTime === Infinity)) return true;
    return remaining.some((op) => {
      if (remaining.some((other) => other.returnTime < op.invokeTime)) return false;
      const next = model.step(state, op);
      return next !== IMPOSSIBLE && search(remaining.filter((other) => other !== op), next);
    });
  };
  return search(operations.filter((op) => op.status !== 'fail'), model.initialState);
}

describe('arbitrary small histories', () => {
  const value = fc.constantFrom<Value>(null, 'x', 'y');
  const requestArbitrary: fc.Arbitrary<Request> = fc.oneof(
    fc.constant<Request>({ kind: 'get', key: 'k' }),
    value.map((written): Request => ({ kind: 'put', key: 'k', value: written })),
    fc.constant<Request>({ kind: 'delete', key: 'k' }),
    fc.tuple(value, value).map(([expected, written]): Request => ({ kind: 'cas', key: 'k', expected, value: written })),
  );
  const entryArbitrary = fc
    .record({
      request: requestArbitrary,
      status: fc.constantFrom('ok', 'ok', 'ok', 'unknown', 'fail'),
      read: value,
      flag: fc.option(fc.boolean(), { nil: undefined }),
      invokeTime: fc.integer({ min: 0, max: 20 }),
      duration: fc.integer({ min: 0, max: 10 }),
    })
    .map(({ request, status, read, flag, invokeTime, duration }): Entry => {
      const returnTime = status === 'unknown' ? Infinity : invokeTime + duration;
      const result = status !== 'ok' ? undefined : request.kind === 'get' ? read : request.kind === 'cas' ? (flag ?? true) : request.kind === 'delete' ? flag : undefined;
      return { process: 0, request, status: status === 'unknown' ? 'unknown' : status === 'fail' ? 'fail' : 'ok', result, invokeTime, returnTime };
    });

  it('get the same verdict as a brute-force search over all orders', () => {
    const verdictsSeen = new Set<string>();
    fc.assert(
      fc.property(fc.array(entryArbitrary, { minLength: 1, maxLength: 8 }), (entries) => {
        const history = historyOf(cairnKvModel, entries);
        const expected = linearizableByBruteForce(cairnKvModel, history.operations) ? 'linearizable' : 'not-linearizable';
        expect(checkHistory(history, { budgetMs: 5_000 }).verdict).toBe(expected);
        verdictsSeen.add(expected);
      }),
      { numRuns: 1_000 },
    );
    expect([...verdictsSeen].sort()).toEqual(['linearizable', 'not-linearizable']);
  });
});

// Small hand-made histories, one rule each. Each rule is shown from both sides
// (a history that must pass next to one that must not), so that a checker
// answering always the same way fails here.

import { describe, expect, it } from 'vitest';
import { checkHistory, type CheckResult } from './checker.js';
import { historyOf, type Operation, type Request, type Result, type Value } from './history.js';
import { cairnKvModel, courseKvModel, type Model } from './model.js';

type Entry = Omit<Operation, 'id'>;

const ok = (process: number, request: Request, invokeTime: number, returnTime: number, result?: Result): Entry => ({ process, request, status: 'ok', result, invokeTime, returnTime });
const unknown = (process: number, request: Request, invokeTime: number): Entry => ({ process, request, status: 'unknown', result: undefined, invokeTime, returnTime: Infinity });
const failed = (process: number, request: Request, invokeTime: number, returnTime: number): Entry => ({ process, request, status: 'fail', result: undefined, invokeTime, returnTime });

const get = (key = 'k'): Request => ({ kind: 'get', key });
const put = (value: Value, key = 'k'): Request => ({ kind: 'put', key, value });
const del = (key = 'k'): Request => ({ kind: 'delete', key });
const cas = (expected: Value, value: Value, key = 'k'): Request => ({ kind: 'cas', key, expected, value });

function check(entries: Entry[], model: Model = cairnKvModel): CheckResult {
  return checkHistory(historyOf(model, entries), { budgetMs: 5_000 });
}
const verdictOf = (entries: Entry[], model?: Model): string => check(entries, model).verdict;

describe('reads', () => {
  it('rejects a stale read: a read that starts after a write returned must see it', () => {
    const writes = [ok(0, put('a'), 0, 1), ok(0, put('b'), 2, 3)];
    expect(verdictOf([...writes, ok(1, get(), 4, 5, 'b')])).toBe('linearizable');
    expect(verdictOf([...writes, ok(1, get(), 4, 5, 'a')])).toBe('not-linearizable');
  });

  it('lets a read concurrent with a write see the old or the new value, but not go back', () => {
    const history = [ok(0, put('a'), 0, 1), ok(0, put('b'), 2, 10)];
    expect(verdictOf([...history, ok(1, get(), 3, 4, 'a'), ok(1, get(), 5, 6, 'b')])).toBe('linearizable');
    expect(verdictOf([...history, ok(1, get(), 3, 4, 'b'), ok(1, get(), 5, 6, 'a')])).toBe('not-linearizable');
  });

  it('treats an event at the same time as a return as concurrent with it', () => {
    expect(verdictOf([ok(0, put('a'), 0, 5), ok(1, get(), 5, 6, null)])).toBe('linearizable');
    expect(verdictOf([ok(0, put('a'), 0, 5), ok(1, get(), 5.001, 6, null)])).toBe('not-linearizable');
  });
});

describe('operations of unknown outcome', () => {
  const before = [ok(0, put('a'), 0, 1), unknown(0, put('b'), 2)];

  it('may take effect long after they were invoked', () => {
    expect(verdictOf([...before, ok(1, get(), 10, 11, 'a'), ok(1, get(), 20, 21, 'b')])).toBe('linearizable');
  });

  it('may never take effect', () => {
    expect(verdictOf([...before, ok(1, get(), 10, 11, 'a'), ok(1, get(), 20, 21, 'a')])).toBe('linearizable');
  });

  it('take effect once: a value cannot come back after it was overwritten', () => {
    expect(verdictOf([...before, ok(1, get(), 10, 11, 'b'), ok(1, get(), 20, 21, 'a')])).toBe('not-linearizable');
  });

  it('cannot take effect before they were invoked', () => {
    expect(verdictOf([ok(1, get(), 0, 1, 'b'), unknown(0, put('b'), 2)])).toBe('not-linearizable');
  });
});

describe('failed operations', () => {
  it('did not happen', () => {
    const history = [ok(0, put('a'), 0, 1), failed(0, put('b'), 2, 3)];
    expect(verdictOf([...history, ok(1, get(), 4, 5, 'a')])).toBe('linearizable');
    expect(verdictOf([...history, ok(1, get(), 4, 5, 'b')])).toBe('not-linearizable');
  });
});

describe('compare-and-set', () => {
  it('succeeds only where the key holds the expected value (null: absent)', () => {
    expect(verdictOf([ok(0, cas(null, 'a'), 0, 1, true), ok(0, cas('a', 'b'), 2, 3, true), ok(0, get(), 4, 5, 'b')])).toBe('linearizable');
    expect(verdictOf([ok(0, put('x'), 0, 1), ok(0, cas(null, 'a'), 2, 3, true)])).toBe('not-linearizable');
    expect(verdictOf([ok(0, put('x'), 0, 1), ok(0, cas('y', 'a'), 2, 3, true)])).toBe('not-linearizable');
  });

  it('lets only one of two concurrent create-if-absent calls succeed', () => {
    expect(verdictOf([ok(0, cas(null, 'a'), 0, 10, true), ok(1, cas(null, 'b'), 0, 10, false)])).toBe('linearizable');
    expect(verdictOf([ok(0, cas(null, 'a'), 0, 10, true), ok(1, cas(null, 'b'), 0, 10, true)])).toBe('not-linearizable');
  });

  it('reads a failed comparison as proof that the key did not hold the expected value', () => {
    expect(verdictOf([ok(0, put('a'), 0, 1), ok(0, cas('z', 'b'), 2, 3, false), ok(0, get(), 4, 5, 'a')])).toBe('linearizable');
    expect(verdictOf([ok(0, put('a'), 0, 1), ok(0, cas('a', 'b'), 2, 3, false)])).toBe('not-linearizable');
  });

  it('lets a cas of unknown outcome take effect only where its comparison holds', () => {
    expect(verdictOf([ok(0, put('a'), 0, 1), unknown(0, cas('a', 'b'), 2), ok(1, get(), 5, 6, 'b')])).toBe('linearizable');
    expect(verdictOf([ok(0, put('a'), 0, 1), unknown(0, cas('z', 'b'), 2), ok(1, get(), 5, 6, 'b')])).toBe('not-linearizable');
    expect(verdictOf([ok(0, put('a'), 0, 1), unknown(0, cas('z', 'b'), 2), ok(1, get(), 5, 6, 'a')])).toBe('linearizable');
  });
});

describe('delete', () => {
  it('makes the key absent', () => {
    const history = [ok(0, put('a'), 0, 1), ok(0, del(), 2, 3)];
    expect(verdictOf([...history, ok(1, get(), 4, 5, null)])).toBe('linearizable');
    expect(verdictOf([...history, ok(1, get(), 4, 5, 'a')])).toBe('not-linearizable');
  });

  it('checks whether the key existed, when the client says', () => {
    expect(verdictOf([ok(0, put('a'), 0, 1), ok(0, del(), 2, 3, true), ok(0, del(), 4, 5, false)])).toBe('linearizable');
    expect(verdictOf([ok(0, put('a'), 0, 1), ok(0, del(), 2, 3, false)])).toBe('not-linearizable');
    expect(verdictOf([ok(0, del(), 0, 1, true)])).toBe('not-linearizable');
  });
});

describe('keys', () => {
  it('are checked independently, and the failing one is named', () => {
    const result = check([ok(0, put('a', 'x'), 0, 1), ok(0, put('b', 'y'), 2, 3), ok(1, get('x'), 4, 5, 'a'), ok(1, get('y'), 6, 7, null)]);
    expect(result).toMatchObject({ verdict: 'not-linearizable', keys: 2, ops: 4, failingKey: 'y' });
  });

  it('do not see each other: a value written to one key is not read from another', () => {
    expect(verdictOf([ok(0, put('a', 'x'), 0, 1), ok(1, get('y'), 2, 3, null)])).toBe('linearizable');
    expect(verdictOf([ok(0, put('a', 'x'), 0, 1), ok(1, get('y'), 2, 3, 'a')])).toBe('not-linearizable');
  });
});

describe('course-kv model', () => {
  const append = (value: string): Request => ({ kind: 'append', key: 'k', value });

  it('appends in order and reads an absent key as ""', () => {
    const history = [ok(0, get(), 0, 1, ''), ok(0, append('x'), 2, 3), ok(0, append('y'), 4, 5)];
    expect(verdictOf([...history, ok(1, get(), 6, 7, 'xy')], courseKvModel)).toBe('linearizable');
    expect(verdictOf([...history, ok(1, get(), 6, 7, 'yx')], courseKvModel)).toBe('not-linearizable');
  });
});

describe('explanation', () => {
  it('names the key and the operations around the violation, for a person', () => {
    const result = check([ok(0, put('a', 'x'), 0, 1), ok(0, put('b', 'x'), 2, 3), ok(1, get('x'), 4, 5, 'a')]);
    expect(result.verdict).toBe('not-linearizable');
    const explanation = result.explanation ?? '';
    expect(explanation).toContain('key "x" is not linearizable');
    expect(explanation).toContain('#1 p0 put "b" ok [2..3] => "b"');
    expect(explanation).toContain('#2 p1 get read "a" [4..5] had to take effect');
    expect(explanation).toContain('it read "a" but the key holds "b"');
  });
});

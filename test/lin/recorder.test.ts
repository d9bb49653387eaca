import { describe, expect, it } from 'vitest';
import { checkHistory, HistoryRecorder } from './index.js';
import { courseKvModel } from './model.js';

/** A clock the test moves by hand. */
function manualClock(): { clock: () => number; set: (time: number) => void } {
  let now = 0;
  return { clock: () => now, set: (time) => (now = time) };
}

describe('HistoryRecorder', () => {
  it('records requests, outcomes and times; operations still pending are unknown', () => {
    const { clock, set } = manualClock();
    const recorder = new HistoryRecorder({ clock });
    const put = recorder.invoke(1, { kind: 'put', key: 'k', value: 'v1' });
    set(1);
    const get = recorder.invoke(2, { kind: 'get', key: 'k' });
    const cas = recorder.invoke(3, { kind: 'cas', key: 'k', expected: null, value: 'v2' });
    const lost = recorder.invoke(4, { kind: 'delete', key: 'k' });
    recorder.invoke(5, { kind: 'put', key: 'k', value: 'v3' });
    set(2);
    recorder.ok(put);
    recorder.ok(get, 'v1');
    recorder.fail(cas);
    recorder.unknown(lost);
    const history = recorder.history();
    expect(history.model.name).toBe('cairn-kv');
    expect(history.operations.map(({ process, status, result, invokeTime, returnTime }) => ({ process, status, result, invokeTime, returnTime }))).toEqual([
      { process: 1, status: 'ok', result: undefined, invokeTime: 0, returnTime: 2 },
      { process: 2, status: 'ok', result: 'v1', invokeTime: 1, returnTime: 2 },
      { process: 3, status: 'fail', result: undefined, invokeTime: 1, returnTime: 2 },
      { process: 4, status: 'unknown', result: undefined, invokeTime: 1, returnTime: Infinity },
      { process: 5, status: 'unknown', result: undefined, invokeTime: 1, returnTime: Infinity },
    ]);
  });

  it('gives a snapshot that later outcomes do not change', () => {
    const recorder = new HistoryRecorder();
    const get = recorder.invoke(1, { kind: 'get', key: 'k' });
    const before = recorder.history();
    recorder.ok(get, null);
    expect(before.operations[0].status).toBe('unknown');
    expect(recorder.history().operations[0].status).toBe('ok');
  });

  it('times operations with a monotonic clock in milliseconds', () => {
    const recorder = new HistoryRecorder();
    const first = recorder.invoke(1, { kind: 'get', key: 'k' });
    recorder.ok(first, null);
    const [operation] = recorder.history().operations;
    expect(operation.invokeTime).toBeGreaterThanOrEqual(0);
    expect(operation.returnTime).toBeGreaterThanOrEqual(operation.invokeTime);
    expect(operation.returnTime).toBeLessThan(60_000);
  });

  it('refuses misuse: a result of the wrong type, a second outcome, an unknown kind, a clock going back', () => {
    const { clock, set } = manualClock();
    const recorder = new HistoryRecorder({ clock });
    const get = recorder.invoke(1, { kind: 'get', key: 'k' });
    expect(() => recorder.ok(get)).toThrow(/a get returns a value or null/);
    const cas = recorder.invoke(1, { kind: 'cas', key: 'k', expected: 'a', value: 'b' });
    expect(() => recorder.ok(cas, 'b')).toThrow(/a cas returns whether it succeeded/);
    const put = recorder.invoke(1, { kind: 'put', key: 'k', value: 'a' });
    recorder.ok(put);
    expect(() => recorder.fail(put)).toThrow(/is not pending/);
    expect(() => recorder.invoke(1, { kind: 'append', key: 'k', value: 'a' })).toThrow(/cairn-kv model has no append/);
    set(-1);
    expect(() => recorder.invoke(1, { kind: 'get', key: 'k' })).toThrow(/clock went backwards/);
  });

  it('bounds the operations it keeps', () => {
    const recorder = new HistoryRecorder({ operationsMax: 2, model: courseKvModel });
    recorder.invoke(1, { kind: 'append', key: 'k', value: 'a' });
    recorder.invoke(2, { kind: 'append', key: 'k', value: 'b' });
    expect(() => recorder.invoke(3, { kind: 'append', key: 'k', value: 'c' })).toThrow(/more than 2 operations/);
  });

  it('feeds checkHistory', () => {
    const { clock, set } = manualClock();
    const recorder = new HistoryRecorder({ clock });
    const put = recorder.invoke('writer', { kind: 'put', key: 'k', value: 'v1' });
    set(1);
    recorder.ok(put);
    set(2);
    const staleRead = recorder.invoke('reader', { kind: 'get', key: 'k' });
    set(3);
    recorder.ok(staleRead, null);
    const result = checkHistory(recorder.history(), { budgetMs: 1_000 });
    expect(result).toMatchObject({ verdict: 'not-linearizable', keys: 1, ops: 2, failingKey: 'k' });
    expect(result.explanation).toContain('#1 reader get read absent [2..3]');
  });
});

import { describe, expect, it } from 'vitest';
import { formatOperation } from './history.js';
import { HistoryParseError, parseEdnHistory, parseHistory, parseJepsenLog } from './parse.js';

const jepsenLog = [
  'INFO  jepsen.util - 0\t:invoke\t:write\t1',
  'INFO  jepsen.util - 1\t:invoke\t:cas\t[1 2]',
  'INFO  jepsen.util - 0\t:ok\t:write\t1',
  'INFO  jepsen.util - 1\t:fail\t:cas\t[1 2]',
  'INFO  jepsen.util - 2   :invoke :read   nil',
  'INFO  jepsen.util - 3\t:invoke\t:write\t4',
  'INFO  jepsen.util - 2   :ok     :read   1',
  'INFO  jepsen.util - 3\t:info\t:write\t:timed-out',
  'INFO  jepsen.util - 4\t:invoke\t:cas\t[1 3]',
  '',
].join('\n');

describe('Jepsen logs', () => {
  it('pair invocations with completions, in invocation order, timed by line number', () => {
    const history = parseJepsenLog(jepsenLog);
    expect(history.model.name).toBe('register');
    expect(history.operations.map(formatOperation)).toEqual([
      '#0 p0 put 1 ok [1..3]',
      // A failed cas is Jepsen's "compare failed": an answer, not a no-op.
      '#1 p1 cas 1->2 compare failed [2..4]',
      '#2 p2 get read 1 [5..7]',
      '#3 p3 put 4 outcome unknown [6..∞]',
      // Never completed: unknown too.
      '#4 p4 cas 1->3 outcome unknown [9..∞]',
    ]);
  });

  it('refuse a line that is not an operation, naming the line', () => {
    expect(() => parseJepsenLog('INFO  jepsen.util - 0\t:invoke\t:read\tnil\nsomething else')).toThrow(/line 2: not a jepsen.util operation line/);
  });

  it('refuse a completion that matches no invocation', () => {
    expect(() => parseJepsenLog('INFO  jepsen.util - 0\t:ok\t:read\t1')).toThrow(HistoryParseError);
    expect(() => parseJepsenLog('INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:write\t1')).toThrow(/completes :write but :read was invoked/);
  });
});

describe('EDN histories', () => {
  const ednHistory = [
    '{:process 0, :type :invoke, :f :get, :key "a", :value nil}',
    '{:process 1, :type :invoke, :f :append, :key "a", :value "x 1 0 y"}',
    '{:process 0, :type :ok, :f :get, :key "a", :value ""}',
    '{:process 1, :type :ok, :f :append, :key "a", :value "x 1 0 y"}',
    '{:process 0, :type :invoke, :f :put, :key "b", :value "x 0 1 y"}',
  ].join('\n');

  it('read one map per line, for the course-kv model', () => {
    const history = parseHistory(ednHistory);
    expect(history.model.name).toBe('course-kv');
    expect(history.operations.map(formatOperation)).toEqual(['#0 p0 get read "" [1..3]', '#1 p1 append "x 1 0 y" ok [2..4]', '#2 p0 put "x 0 1 y" outcome unknown [5..∞]']);
    expect(history.operations.map((op) => op.request.key)).toEqual(['a', 'a', 'b']);
  });

  it('refuse a map without a required field', () => {
    expect(() => parseEdnHistory('{:process 0, :type :invoke, :f :get, :value nil}')).toThrow(/line 1: missing :key/);
  });

  it('refuse text that is not EDN', () => {
    expect(() => parseEdnHistory('{:process 0, :type :invoke, :f :get, :key "a", :value nil')).toThrow(/line 1: missing }/);
  });
});

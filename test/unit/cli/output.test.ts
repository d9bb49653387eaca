import { describe, expect, it } from 'vitest';
import { CommanderError } from 'commander';
import { ConnectionError, KeyValue, TimeoutError, UnavailableError } from '../../../src/client/index.js';
import { describeFailure, UsageError } from '../../../cli/failure.js';
import { LatencyHistogram } from '../../../cli/latency-histogram.js';
import { readableLogLine } from '../../../cli/member-log.js';
import { displayBytes, kvJson } from '../../../cli/output.js';
import { formatTable } from '../../../cli/table.js';
import { parseTxn } from '../../../cli/txn-command.js';

// The cairn command's pure pieces: tables, JSON key-values, txn files, failure
// messages and exit statuses, member log lines, latency percentiles.

const bytes = (s: string | number[]): Uint8Array => new Uint8Array(typeof s === 'string' ? Buffer.from(s) : s);

describe('formatTable', () => {
  it('pads every column to its widest cell under a header row, numbers to the right', () => {
    const text = formatTable([{ title: 'KEY' }, { title: 'REV', align: 'right' }], [['a', 7], ['longer-key', 12345]]);
    const lines = text.trimEnd().split('\n');
    expect(lines).toEqual([
      '+------------+-------+',
      '|    KEY     |  REV  |',
      '+------------+-------+',
      '| a          |     7 |',
      '| longer-key | 12345 |',
      '+------------+-------+',
    ]);
  });

  it('escapes line breaks and control characters so a value cannot break a row', () => {
    const text = formatTable([{ title: 'V' }], [['two\nlines\tand\u0001']]);
    expect(text.split('\n')[3]).toBe('| two\\nlines\\tand\\x01 |');
  });
});

describe('key-values as JSON and as text', () => {
  it('keeps UTF-8 as text and turns anything else into base64 with "encoding"', () => {
    expect(kvJson(new KeyValue(bytes('k'), bytes('héllo'), 1, 2, 3, 0))).toEqual({ key: 'k', value: 'héllo', createRevision: 1, modRevision: 2, version: 3, lease: 0 });
    const binary = kvJson(new KeyValue(bytes('k'), bytes([0, 255, 10]), 4, 4, 1, 9));
    expect(binary).toMatchObject({ key: 'aw==', value: 'AP8K', encoding: 'base64', lease: 9 });
    expect(Buffer.from(binary.value as string, 'base64')).toEqual(Buffer.from([0, 255, 10]));
  });

  it('shows bytes to a person: escaped text, or marked base64', () => {
    expect(displayBytes(bytes('a\nb'))).toBe('a\\nb');
    expect(displayBytes(bytes([0xff]))).toBe('base64:/w==');
  });
});

describe('parseTxn', () => {
  it('reads API.md JSON, with base64 keys and values where "encoding" says so', () => {
    const txn = parseTxn(
      JSON.stringify({
        compare: [{ key: 'lock', target: 'version', op: '=', value: 0 }],
        success: [{ put: { key: 'bG9jaw==', value: '/w==', encoding: 'base64', lease: 5 } }],
        failure: [{ get: { key: 'lock', prefix: true } }, { delete: { key: 'x' } }],
      }),
    );
    expect(txn.compare).toEqual([{ key: 'lock', target: 'version', op: '=', value: 0 }]);
    expect(txn.success).toEqual([{ put: { key: new Uint8Array(Buffer.from('lock')), value: new Uint8Array([0xff]), lease: 5 } }]);
    expect(txn.failure).toEqual([{ get: { key: 'lock', prefix: true } }, { delete: { key: 'x', prefix: false } }]);
  });

  it.each([
    ['not json', 'not valid JSON'],
    ['[]', 'the transaction must be an object'],
    ['{"compare":[{"key":"k","target":"size","op":"=","value":1}]}', 'compare[0].target'],
    ['{"compare":[{"key":"k","target":"version","op":"=","value":"1"}]}', 'compare[0].value must be a whole number'],
    ['{"success":[{"put":{"key":"k"}}]}', 'success[0].put.value must be a string'],
    ['{"failure":[{"upsert":{"key":"k"}}]}', 'failure[0] must be'],
    ['{"succes":[]}', 'unknown field "succes"'],
  ])('refuses %s as bad usage naming where', (text, message) => {
    expect(() => parseTxn(text)).toThrow(UsageError);
    expect(() => parseTxn(text)).toThrow(message);
  });
});

describe('describeFailure', () => {
  const endpoint = 'http://127.0.0.1:1';

  it('an unreachable endpoint: exit 1, names it and why, suggests --endpoints', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    const f = describeFailure(new ConnectionError('no endpoint could be reached within 1000 ms (3 attempts)', [{ endpoint, error: new Error('network', { cause: refused }) }]), [endpoint]);
    expect(f.exitCode).toBe(1);
    expect(f.message).toContain(endpoint);
    expect(f.message).toContain('connection refused');
    expect(f.hint).toContain('--endpoints');
  });

  it('an unknown outcome says the write may have been applied; no leader says to retry', () => {
    const timeout = describeFailure(new TimeoutError('no answer from x within 5 ms; the request may or may not have been applied'), [endpoint]);
    expect(timeout).toMatchObject({ exitCode: 1 });
    expect(timeout.hint).toContain('may or may not have been applied');
    expect(describeFailure(new UnavailableError('no leader'), [endpoint]).hint).toContain('retry');
  });

  it('bad usage exits 2, whoever finds it', () => {
    expect(describeFailure(new UsageError('--endpoints is empty'), []).exitCode).toBe(2);
    expect(describeFailure(new CommanderError(1, 'commander.unknownOption', "unknown option '--x'"), []).exitCode).toBe(2);
  });
});

describe('readableLogLine', () => {
  it('turns pino JSON into time, level, message and the other fields', () => {
    const line = JSON.stringify({ level: 30, time: Date.UTC(2024, 0, 1, 12, 0, 1, 5), pid: 1, hostname: 'h', member: 'n1', id: 'abc', msg: 'became leader', term: 3, note: 'two words' });
    expect(readableLogLine(line)).toBe('12:00:01.005 INFO  became leader term=3 note="two words"');
  });

  it('leaves other lines as they are', () => {
    expect(readableLogLine('plain text {')).toBe('plain text {');
    expect(readableLogLine('{not json')).toBe('{not json');
  });
});

describe('LatencyHistogram', () => {
  it('gives percentiles to three significant digits, never above the maximum', () => {
    const h = new LatencyHistogram();
    for (let i = 1; i <= 1000; i++) h.recordMs(i / 10); // 0.1 .. 100 ms
    const s = h.summary();
    expect(s.count).toBe(1000);
    expect(s.p50Ms).toBeCloseTo(50, 0);
    expect(s.p99Ms).toBeCloseTo(99, 0);
    expect(s.maxMs).toBeCloseTo(100, 0);
    expect(s.p999Ms).toBeLessThanOrEqual(s.maxMs);
    expect(s.meanMs).toBeCloseTo(50.05, 0);
    expect(new LatencyHistogram().summary()).toMatchObject({ count: 0, p50Ms: 0, maxMs: 0 });
  });
});

import { existsSync, readFileSync } from 'node:fs';
import { ERROR_CODES } from '../../../src/errors.js';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { errorFromResponse, SERVER_ERROR_STATUS } from '../../../src/client/errors.js';
import { encodeKeyPath, KeyValue } from '../../../src/client/key-value.js';
import { SseParser, type SseMessage } from '../../../src/client/sse.js';
import { WatchCursor } from '../../../src/client/watch.js';
import type { WatchEvent } from '../../../src/client/types.js';

// The client's pure pieces: the SSE parser, the watch cursor, key paths, the error table.

function parseAll(chunks: readonly Uint8Array[]): SseMessage[] {
  const parser = new SseParser();
  return chunks.flatMap((c) => parser.push(c));
}

describe('SseParser', () => {
  it('reads ids, event types, multi-line data and comments, with any line ending', () => {
    const text = ': hello\n\nid: 7\nevent: put\ndata: {"a":1}\n\r\nevent: progress\rdata: line one\r\ndata:line two\ndata\n\n' + 'data: no event\n\nid: 9\n\n';
    expect(parseAll([Buffer.from(text)])).toEqual([
      { id: '7', event: 'put', data: '{"a":1}' },
      { id: undefined, event: 'progress', data: 'line one\nline two\n' },
      { id: undefined, event: 'message', data: 'no event' },
    ]);
  });

  it('says when a message is half read', () => {
    const parser = new SseParser();
    expect(parser.push(Buffer.from('id: 1\nevent: put\n'))).toEqual([]);
    expect(parser.midMessage).toBe(true);
    expect(parser.push(Buffer.from('data: x\n\n'))).toHaveLength(1);
    expect(parser.midMessage).toBe(false);
  });

  it('gives the same messages however the bytes are split (property)', () => {
    const message = fc.record({
      id: fc.option(fc.integer({ min: 0, max: 1e9 }).map(String), { nil: undefined }),
      event: fc.constantFrom('put', 'delete', 'progress'),
      data: fc.array(fc.string({ unit: 'grapheme' }).map((s) => s.replace(/[\r\n]/g, '')), { minLength: 1, maxLength: 3 }),
    });
    fc.assert(
      fc.property(fc.array(message, { maxLength: 6 }), fc.constantFrom('\n', '\r\n', '\r'), fc.array(fc.nat(), { maxLength: 8 }), (messages, eol, cuts) => {
        const text = messages
          .map((m) => [...(m.id === undefined ? [] : [`id: ${m.id}`]), `event: ${m.event}`, ...m.data.map((d) => `data: ${d}`), ': comment', ''].join(eol) + eol)
          .join('');
        const bytes = Buffer.from(text);
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const chunks = [0, ...points, bytes.length].slice(1).map((end, i, ends) => bytes.subarray(i === 0 ? 0 : ends[i - 1], end));
        expect(parseAll(chunks)).toEqual(messages.map((m) => ({ id: m.id, event: m.event, data: m.data.join('\n') })));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a message past its size limit', () => {
    expect(() => new SseParser(10).push(Buffer.from('data: 0123456789\n'))).toThrow(RangeError);
  });
});

describe('WatchCursor', () => {
  const events = (n: number): WatchEvent[] =>
    Array.from({ length: n }, (_, i) => ({ type: 'put', kv: new KeyValue(Uint8Array.of(i), new Uint8Array(0), 1, 1, 1, 0) }));

  it('resumes right after a revision proven complete', () => {
    const cursor = new WatchCursor(0);
    expect(cursor.reconnect()).toBe(0);
    expect(cursor.accept(5, events(2))).toHaveLength(2);
    cursor.complete(5);
    expect(cursor.reconnect()).toBe(5);
    expect(cursor.accept(5, events(2))).toHaveLength(0);
    expect(cursor.accept(4, events(1))).toHaveLength(0);
  });

  it('resumes before a revision that may be incomplete and skips what it delivered', () => {
    const cursor = new WatchCursor(0);
    cursor.reconnect();
    const first = events(3);
    expect(cursor.accept(5, first.slice(0, 1))).toEqual(first.slice(0, 1));
    expect(cursor.accept(5, first.slice(1, 2))).toEqual(first.slice(1, 2)); // same connection: continuation
    expect(cursor.reconnect()).toBe(4);
    expect(cursor.accept(5, first.slice(0, 1))).toEqual([]);
    expect(cursor.accept(5, first.slice(1))).toEqual(first.slice(2));
    expect(cursor.accept(6, events(1))).toHaveLength(1);
    expect(cursor.revision).toBe(6);
  });

  it('moves on with progress, never back', () => {
    const cursor = new WatchCursor(3);
    expect(cursor.progress(2)).toBe(false);
    expect(cursor.progress(9)).toBe(true);
    expect(cursor.reconnect()).toBe(9);
  });

  it('retries after a compaction only when the incomplete revision is the one compacted away', () => {
    const cursor = new WatchCursor(0);
    cursor.accept(5, events(1));
    expect(cursor.retryAfterCompacted(7)).toBe(false);
    expect(cursor.retryAfterCompacted(6)).toBe(true);
    expect(cursor.reconnect()).toBe(5);
    expect(cursor.retryAfterCompacted(6)).toBe(false);
  });
});

describe('key paths', () => {
  const decode = (path: string): Uint8Array => {
    const out: number[] = [];
    for (let i = 0; i < path.length; i++) {
      if (path[i] === '%') {
        out.push(parseInt(path.slice(i + 1, i + 3), 16));
        i += 2;
      } else out.push(path.charCodeAt(i));
    }
    return Uint8Array.from(out);
  };

  it('keeps unreserved characters and /, escapes the rest and dot segments', () => {
    expect(encodeKeyPath(Buffer.from('app/db/url-1_~.x'))).toBe('app/db/url-1_~.x');
    expect(encodeKeyPath(Buffer.from('a b?c#d%e+f'))).toBe('a%20b%3Fc%23d%25e%2Bf');
    expect(encodeKeyPath(Buffer.from('./../a/..b/.'))).toBe('%2E/%2E%2E/a/..b/%2E');
    expect(encodeKeyPath(Uint8Array.of(0xff, 0x00))).toBe('%FF%00');
  });

  it('decodes back to the same bytes, in ASCII only (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (key) => {
        const path = encodeKeyPath(key);
        expect(path).toMatch(/^[A-Za-z0-9\-._~/%]*$/);
        expect(decode(path)).toEqual(key);
      }),
    );
  });
});

describe('error table', () => {
  it("matches the server's error table", () => {
    expect(SERVER_ERROR_STATUS).toEqual(ERROR_CODES);
  });

  // The contract lives beside the repository (../shared/API.md) on a developer's
  // machine; a bare checkout (CI) has only the server's table, checked above.
  const apiPath = fileURLToPath(new URL('../../../../shared/API.md', import.meta.url));
  it.runIf(existsSync(apiPath))("matches the codes and statuses of API.md's client API", () => {
    const api = readFileSync(apiPath, 'utf8');
    const section = api.slice(api.indexOf('- Errors:'), api.indexOf('### Key-value'));
    const documented = Object.fromEntries([...section.matchAll(/`(\w+)` (\d{3})/g)].map((m) => [m[1], Number(m[2])]));
    expect(documented).toEqual(SERVER_ERROR_STATUS);
  });

  it('has one class per code, with the code and status of the response', () => {
    for (const [code, status] of Object.entries(SERVER_ERROR_STATUS)) {
      const error = errorFromResponse(status, { code, message: 'm' }, undefined, 'e');
      expect(error.code).toBe(code);
      expect(error.status).toBe(status);
      expect(error.name).toBe(`${code}Error`);
      expect(error.outcomeUnknown).toBe(code === 'Timeout');
      // The status alone gives the same class when the body says nothing, except 404 (a wrong URL, most likely).
      if (code !== 'KeyNotFound') expect(errorFromResponse(status, undefined, undefined, 'e').constructor).toBe(error.constructor);
    }
    expect(errorFromResponse(404, undefined, undefined, 'e').code).toBe('Internal');
  });
});

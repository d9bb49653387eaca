import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { bodyBytes, decodeKeyPath, decodeRequestBody, encodeResponse, responseFormat, wireKeys, wireKv } from '../../../src/server/encoding.js';
import { rewriteKeyUrl } from '../../../src/server/key-path.js';
import { onlyParams, queryBase64, queryCount, queryFlag } from '../../../src/server/query.js';

const bytes = (...b: number[]): Uint8Array => new Uint8Array(b);
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const kv = (key: Uint8Array, value: Uint8Array) => ({ key, value, createRevision: 1, modRevision: 2, version: 2, lease: 0 });

/** Percent-encodes every byte outside [A-Za-z0-9/] (what a client might do). */
function encodeAll(key: Uint8Array): string {
  return [...key].map((b) => (/[A-Za-z0-9/]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0')}`)).join('');
}

describe('keys in paths', () => {
  it('decodes percent-escapes to any bytes, keeps / and UTF-8 characters', () => {
    expect(decodeKeyPath('app/db/url')).toEqual(text('app/db/url'));
    expect(decodeKeyPath('a%2Fb%20c%25')).toEqual(text('a/b c%'));
    expect(decodeKeyPath('%FF%00x')).toEqual(bytes(0xff, 0, 0x78));
    expect(decodeKeyPath('é')).toEqual(text('é'));
    expect(decodeKeyPath('')).toEqual(bytes());
  });

  it('refuses malformed escapes', () => {
    for (const bad of ['%', '%F', '%zz', 'a%G1', 'x%']) expect(() => decodeKeyPath(bad), bad).toThrow(/percent-escape/);
  });

  it('decodes what a client encodes, for any bytes (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (key) => {
        expect(decodeKeyPath(encodeAll(key))).toEqual(key);
      }),
    );
  });

  it('routes key paths on a placeholder, keeping the query', () => {
    expect(rewriteKeyUrl('/v1/kv/a%FFb?prefix=true')).toBe('/v1/kv/key?prefix=true');
    expect(rewriteKeyUrl('/v1/watch/x/y')).toBe('/v1/watch/key');
    expect(rewriteKeyUrl('/v1/status?x=1')).toBe('/v1/status?x=1');
  });
});

describe('key-values in responses', () => {
  const json = responseFormat(undefined, false);

  it('gives UTF-8 as text and anything else as base64 with encoding, for key and value together', () => {
    expect(wireKv(kv(text('k'), text('vé')), json)).toEqual({ key: 'k', value: 'vé', createRevision: 1, modRevision: 2, version: 2, lease: 0 });
    const binary = wireKv(kv(text('k'), bytes(0xff, 0xfe)), json);
    expect(binary).toMatchObject({ key: 'aw==', value: '//4=', encoding: 'base64' });
    expect(wireKv(kv(text('k'), text('v')), responseFormat(undefined, true))).toMatchObject({ key: 'aw==', value: 'dg==', encoding: 'base64' });
  });

  it('keeps raw bytes in msgpack', () => {
    const format = responseFormat('application/msgpack', false);
    expect(format).toEqual({ msgpack: true });
    const wired = wireKv(kv(text('k'), bytes(0xff)), format);
    expect(wired.value).toEqual(bytes(0xff));
    const { payload, contentType } = encodeResponse({ kv: wired }, format);
    expect(contentType).toBe('application/msgpack');
    expect(Buffer.from((new Packr({ useRecords: false }).unpack(payload as Buffer) as { kv: { value: Uint8Array } }).kv.value)).toEqual(Buffer.from([0xff]));
  });

  it('encodes a list of keys with one rule for the list', () => {
    expect(wireKeys([text('a'), text('b')], json)).toEqual({ keys: ['a', 'b'] });
    expect(wireKeys([text('a'), bytes(0xff)], json)).toEqual({ keys: ['YQ==', '/w=='], encoding: 'base64' });
  });
});

describe('request bodies', () => {
  it('reads JSON (with or without a type) and msgpack', () => {
    expect(decodeRequestBody(text('{"ttl":5}'), 'application/json; charset=utf-8')).toEqual({ ttl: 5 });
    expect(decodeRequestBody(text('{"ttl":5}'), undefined)).toEqual({ ttl: 5 });
    expect(decodeRequestBody(new Packr({ useRecords: false }).pack({ ttl: 5 }), 'application/msgpack')).toEqual({ ttl: 5 });
  });

  it('refuses empty bodies, bad JSON, bad UTF-8 and other types with InvalidArgument', () => {
    expect(() => decodeRequestBody(undefined, 'application/json')).toThrow(/needs a JSON/);
    expect(() => decodeRequestBody(text('{'), 'application/json')).toThrow(/not valid JSON/);
    expect(() => decodeRequestBody(bytes(0x22, 0xff, 0x22), 'application/json')).toThrow(/UTF-8/);
    expect(() => decodeRequestBody(text('ttl=5'), 'application/x-www-form-urlencoded')).toThrow(/must be application\/json/);
  });

  it('reads key and value fields as text, base64 or raw bytes', () => {
    expect(bodyBytes('é', false, 'key')).toEqual(text('é'));
    expect(bodyBytes('/w==', true, 'key')).toEqual(bytes(0xff));
    expect(bodyBytes(bytes(1, 2), false, 'key')).toEqual(bytes(1, 2));
    expect(() => bodyBytes('!!', true, 'key')).toThrow(/base64/);
    expect(() => bodyBytes(5, false, 'key')).toThrow(/must be a string/);
  });
});

describe('query parameters', () => {
  it('parses flags, counts and encoding strictly', () => {
    expect(queryFlag({ prefix: 'true' }, 'prefix')).toBe(true);
    expect(queryFlag({ prefix: '' }, 'prefix')).toBe(true);
    expect(queryFlag({ prefix: 'false' }, 'prefix')).toBe(false);
    expect(queryFlag({}, 'prefix')).toBe(false);
    expect(() => queryFlag({ prefix: 'yes' }, 'prefix')).toThrow(/true or false/);
    expect(queryCount({ limit: '10' }, 'limit')).toBe(10);
    for (const bad of ['abc', '-1', '1.5', '1e3', '', '99999999999999999']) expect(() => queryCount({ limit: bad }, 'limit'), bad).toThrow(/non-negative integer/);
    expect(() => queryCount({ limit: ['1', '2'] }, 'limit')).toThrow(/more than once/);
    expect(queryBase64({ encoding: 'base64' })).toBe(true);
    expect(() => queryBase64({ encoding: 'hex' })).toThrow(/base64/);
    expect(() => onlyParams({ prefx: 'true' }, ['prefix'])).toThrow(/unknown query parameter "prefx"/);
  });
});

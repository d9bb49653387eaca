import { Packr } from 'msgpackr';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildClientApp, type ClientAppOptions } from '../../../src/server/app.js';
import { FakeBackend } from './fake-backend.js';

// The key-value routes through inject() (no sockets) on an in-memory backend.

const packr = new Packr({ useRecords: false });
type Body = Record<string, any>;
const json = (r: LightMyRequestResponse): Body => JSON.parse(r.body) as Body;

describe('key-value routes', () => {
  let backend: FakeBackend;
  let app: FastifyInstance;
  const start = (options: Partial<ClientAppOptions> = {}): void => {
    backend = new FakeBackend();
    app = buildClientApp({ backend, ...options });
  };
  const put = (url: string, payload: string | Buffer, headers: Record<string, string> = {}) =>
    app.inject({ method: 'PUT', url, payload, headers: { 'content-type': 'application/octet-stream', ...headers } });
  const txn = (payload: unknown) => app.inject({ method: 'POST', url: '/v1/txn', payload: payload as object, headers: { 'content-type': 'application/json' } });

  beforeEach(() => start());
  afterEach(async () => {
    await app.close();
  });

  /** Expects an error answer with this status and code; returns its error object. */
  function expectError(r: LightMyRequestResponse, status: number, code: string): Body {
    expect(r.statusCode, r.body).toBe(status);
    const body = json(r);
    expect(body.error.code).toBe(code);
    expect(typeof body.error.message).toBe('string');
    return body.error as Body;
  }

  it('puts and gets text; the answers carry header and X-Cairn-Revision', async () => {
    const r = await put('/v1/kv/app/db/url', 'postgres://x');
    expect(r.statusCode).toBe(200);
    expect(json(r)).toEqual({ header: { revision: 1, raftTerm: 3, memberId: '00000000000000a1' } });
    expect(r.headers['x-cairn-revision']).toBe('1');
    const get = await app.inject({ url: '/v1/kv/app/db/url' });
    expect(get.headers['content-type']).toContain('application/json');
    expect(get.headers['x-cairn-revision']).toBe('1');
    expect(json(get)).toEqual({
      header: { revision: 1, raftTerm: 3, memberId: '00000000000000a1' },
      kv: { key: 'app/db/url', value: 'postgres://x', createRevision: 1, modRevision: 1, version: 1, lease: 0 },
    });
  });

  it('stores any body as given, whatever its content type', async () => {
    await put('/v1/kv/j', '{"a": 1}', { 'content-type': 'application/json' });
    await put('/v1/kv/m', Buffer.from(packr.pack({ a: 1 })), { 'content-type': 'application/msgpack' });
    await app.inject({ method: 'PUT', url: '/v1/kv/t', payload: 'plain' });
    expect(json(await app.inject({ url: '/v1/kv/j' })).kv.value).toBe('{"a": 1}');
    const m = await app.inject({ url: '/v1/kv/m', headers: { accept: 'application/msgpack' } });
    expect(Buffer.from((packr.unpack(m.rawPayload) as Body).kv.value)).toEqual(Buffer.from(packr.pack({ a: 1 })));
    expect(json(await app.inject({ url: '/v1/kv/t' })).kv.value).toBe('plain');
    await put('/v1/kv/empty', '');
    expect(json(await app.inject({ url: '/v1/kv/empty' })).kv).toMatchObject({ value: '', version: 1 });
  });

  it('gives bytes that are not UTF-8 as base64 with encoding; ?encoding=base64 asks for it always', async () => {
    const bytes = Buffer.from([0xff, 0x00, 0xfe]);
    await put('/v1/kv/bin', bytes);
    const kv = json(await app.inject({ url: '/v1/kv/bin' })).kv;
    expect(kv.encoding).toBe('base64');
    expect(Buffer.from(kv.value, 'base64')).toEqual(bytes);
    expect(Buffer.from(kv.key, 'base64').toString()).toBe('bin');
    await put('/v1/kv/txt', 'hello');
    const forced = json(await app.inject({ url: '/v1/kv/txt?encoding=base64' })).kv;
    expect(forced).toMatchObject({ key: Buffer.from('txt').toString('base64'), value: Buffer.from('hello').toString('base64'), encoding: 'base64' });
    expect(json(await app.inject({ url: '/v1/kv/txt' })).kv.encoding).toBeUndefined();
  });

  it('answers msgpack with raw bytes on Accept: application/msgpack', async () => {
    const bytes = Buffer.from([0xff, 0x00, 0xfe]);
    await put('/v1/kv/bin%FF', bytes);
    const r = await app.inject({ url: '/v1/kv/bin%FF', headers: { accept: 'application/msgpack' } });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toContain('application/msgpack');
    expect(r.headers['x-cairn-revision']).toBe('1');
    const body = packr.unpack(r.rawPayload) as Body;
    expect(Buffer.from(body.kv.key)).toEqual(Buffer.from([0x62, 0x69, 0x6e, 0xff]));
    expect(Buffer.from(body.kv.value)).toEqual(bytes);
    expect(body.kv.encoding).toBeUndefined();
    expect(body.header.revision).toBe(1);
  });

  it('takes keys with / and percent-escapes (any byte) from the path', async () => {
    await put('/v1/kv/a%2Fb', '1');
    expect(json(await app.inject({ url: '/v1/kv/a/b' })).kv.value).toBe('1');
    await put('/v1/kv/100%25%20sure', '2');
    expect(json(await app.inject({ url: '/v1/kv/100%25%20sure' })).kv.key).toBe('100% sure');
    await put('/v1/kv/%C3%A9t%C3%A9', '3');
    expect(json(await app.inject({ url: '/v1/kv/%C3%A9t%C3%A9' })).kv.key).toBe('été');
    await put('/v1/kv/%00%ff', '4');
    const raw = packr.unpack((await app.inject({ url: '/v1/kv/%00%FF', headers: { accept: 'application/msgpack' } })).rawPayload) as Body;
    expect(Buffer.from(raw.kv.key)).toEqual(Buffer.from([0x00, 0xff]));
    const long = 'k/'.repeat(200);
    await put(`/v1/kv/${long}`, '5');
    expect(json(await app.inject({ url: `/v1/kv/${long}` })).kv.key).toBe(long);
  });

  it('ranges by prefix with limit, more, count, keysOnly, countOnly, and as of a revision', async () => {
    for (const k of ['r/a', 'r/b', 'r/c', 's/x']) await put(`/v1/kv/${k}`, `v-${k}`);
    const limited = json(await app.inject({ url: '/v1/kv/r/?prefix=true&limit=2' }));
    expect(limited.kvs.map((kv: Body) => kv.key)).toEqual(['r/a', 'r/b']);
    expect(limited).toMatchObject({ count: 3, more: true });
    const all = json(await app.inject({ url: '/v1/kv/r/?prefix=true' }));
    expect(all).toMatchObject({ count: 3, more: false });
    const keysOnly = json(await app.inject({ url: '/v1/kv/r/?prefix=true&keysOnly=true' }));
    expect(keysOnly.kvs.map((kv: Body) => [kv.key, kv.value])).toEqual([
      ['r/a', ''],
      ['r/b', ''],
      ['r/c', ''],
    ]);
    const counted = json(await app.inject({ url: '/v1/kv/r/?prefix=true&countOnly=true' }));
    expect(counted).toMatchObject({ kvs: [], count: 3, more: false });
    const everything = await app.inject({ url: '/v1/kv/?prefix=true' });
    expect(json(everything).kvs.map((kv: Body) => kv.key)).toEqual(['r/a', 'r/b', 'r/c', 's/x']);
    expect(everything.headers['x-cairn-revision']).toBe('4');
    await put('/v1/kv/r/a', 'new');
    expect(json(await app.inject({ url: '/v1/kv/r/a?revision=1' })).kv.value).toBe('v-r/a');
    expect(json(await app.inject({ url: '/v1/kv/r/a' })).kv).toMatchObject({ value: 'new', version: 2, createRevision: 1, modRevision: 5 });
    expect(backend.calls.filter((c) => c === 'range')).toHaveLength(7);
  });

  it('answers 404 KeyNotFound for a missing key, but a count for countOnly', async () => {
    const error = expectError(await app.inject({ url: '/v1/kv/nope' }), 404, 'KeyNotFound');
    expect(error.message).toContain('"nope"');
    const counted = await app.inject({ url: '/v1/kv/nope?countOnly=true' });
    expect(counted.statusCode).toBe(200);
    expect(json(counted)).toMatchObject({ count: 0, kvs: [] });
  });

  it('answers 412 CompareFailed with the current kv when ifVersion or ifModRevision does not hold', async () => {
    await put('/v1/kv/c', '1');
    const exists = expectError(await put('/v1/kv/c?ifVersion=0', '2'), 412, 'CompareFailed');
    expect(exists.kv).toMatchObject({ key: 'c', value: '1', version: 1, modRevision: 1 });
    expectError(await put('/v1/kv/c?ifModRevision=7', '2'), 412, 'CompareFailed');
    const ok = await put('/v1/kv/c?ifModRevision=1&prevKv=true', '2');
    expect(ok.statusCode).toBe(200);
    expect(json(ok).prevKv).toMatchObject({ key: 'c', value: '1' });
    expect((await put('/v1/kv/fresh?ifVersion=0', 'x')).statusCode).toBe(200);
    const missing = expectError(await put('/v1/kv/absent?ifVersion=3', 'x'), 412, 'CompareFailed');
    expect(missing.kv).toBeUndefined();
    const binary = await put('/v1/kv/c?ifVersion=9', 'x', { accept: 'application/msgpack' });
    expect(binary.statusCode).toBe(412);
    expect(Buffer.from((packr.unpack(binary.rawPayload) as Body).error.kv.value).toString()).toBe('2');
  });

  it('answers 410 Compacted with compactRevision for a read below it', async () => {
    for (const v of ['1', '2', '3']) await put('/v1/kv/h', v);
    const compact = await app.inject({ method: 'POST', url: '/v1/compact', payload: { revision: 3 } });
    expect(compact.statusCode).toBe(200);
    const error = expectError(await app.inject({ url: '/v1/kv/h?revision=2' }), 410, 'Compacted');
    expect(error.compactRevision).toBe(3);
    expect(json(await app.inject({ url: '/v1/kv/h?revision=3' })).kv.value).toBe('3');
  });

  it('answers 413 TooLarge for a body, value or key past its limit, without calling the backend', async () => {
    await app.close();
    start({ maxRequestBytes: 4096, maxValueBytes: 1024, maxKeyBytes: 16 });
    expectError(await put('/v1/kv/big', Buffer.alloc(5000)), 413, 'TooLarge');
    expectError(await put('/v1/kv/value', Buffer.alloc(2000)), 413, 'TooLarge');
    expectError(await put(`/v1/kv/${'k'.repeat(17)}`, 'v'), 413, 'TooLarge');
    expectError(await put(`/v1/kv/${'%FF'.repeat(17)}`, 'v'), 413, 'TooLarge');
    expectError(await app.inject({ url: `/v1/kv/${'k'.repeat(100)}` }), 413, 'TooLarge');
    expectError(await txn({ success: [{ put: { key: 'k'.repeat(17), value: 'v' } }] }), 413, 'TooLarge');
    expectError(await txn({ success: [{ put: { key: 'k', value: 'v'.repeat(1025) } }] }), 413, 'TooLarge');
    expect(backend.calls).toEqual([]);
    expect((await put(`/v1/kv/${'k'.repeat(16)}`, Buffer.alloc(1024))).statusCode).toBe(200);
  });

  it('refuses malformed requests with 400 InvalidArgument before the backend sees them', async () => {
    const gets = [
      '/v1/kv/x?limit=abc',
      '/v1/kv/x?revision=-1',
      '/v1/kv/x?revision=1.5',
      '/v1/kv/x?bogus=1',
      '/v1/kv/x?prefix=maybe',
      '/v1/kv/x?limit=1&limit=2',
      '/v1/kv/x?encoding=hex',
      '/v1/kv/',
      '/v1/kv/%zz',
      '/v1/kv/a%F',
    ];
    for (const url of gets) {
      const error = expectError(await app.inject({ url }), 400, 'InvalidArgument');
      expect(error.message.length, url).toBeGreaterThan(10);
    }
    expectError(await put('/v1/kv/x?ifVersion=soon', 'v'), 400, 'InvalidArgument');
    expectError(await put('/v1/kv/x?lease=-5', 'v'), 400, 'InvalidArgument');
    expectError(await put('/v1/kv/', 'v'), 400, 'InvalidArgument');
    expectError(await app.inject({ method: 'DELETE', url: '/v1/kv/' }), 400, 'InvalidArgument');
    expectError(await app.inject({ method: 'DELETE', url: '/v1/kv/a?prefix=true&ifModRevision=3' }), 400, 'InvalidArgument');
    expectError(await app.inject({ method: 'POST', url: '/v1/kv/x' }), 400, 'InvalidArgument');
    expect(backend.calls).toEqual([]);
    expect(backend.revision).toBe(0);
  });

  it('refuses malformed txn bodies with 400 InvalidArgument naming the field', async () => {
    const cases: [unknown, RegExp][] = [
      [{ compare: [{ key: 'a', target: 'nope', op: '=', value: 1 }] }, /compare\[0\]\.target/],
      [{ compare: [{ key: 'a', target: 'version', op: '==', value: 1 }] }, /compare\[0\]\.op/],
      [{ compare: [{ key: 'a', target: 'version', op: '=', value: '1' }] }, /compare\[0\]\.value/],
      [{ compare: [{ key: 'a', target: 'value', op: '=', value: 1 }] }, /compare\[0\]\.value/],
      [{ compare: [{ key: '', target: 'version', op: '=', value: 1 }] }, /compare\[0\]\.key/],
      [{ success: [{ put: { key: 'a' } }] }, /success\[0\]\.put\.value/],
      [{ success: [{ put: { key: 'a', value: 'v', lease: -1 } }] }, /lease/],
      [{ success: [{ get: { key: 'a' }, put: { key: 'a', value: 'v' } }] }, /exactly one/],
      [{ success: [{ delete: { key: 'a', prefix: 'yes' } }] }, /prefix/],
      [{ failure: [{ get: { key: 'a', encoding: 'hex' } }] }, /encoding/],
      [{ failure: [{ get: { key: '%%%', encoding: 'base64' } }] }, /base64/],
      [{ success: {} }, /success must be a list/],
      [{ compares: [] }, /unknown field "compares"/],
      [[1, 2], /must be an object/],
    ];
    for (const [body, message] of cases) {
      const error = expectError(await txn(body), 400, 'InvalidArgument');
      expect(error.message).toMatch(message);
    }
    const notJson = await app.inject({ method: 'POST', url: '/v1/txn', payload: '{"compare":', headers: { 'content-type': 'application/json' } });
    expect(expectError(notJson, 400, 'InvalidArgument').message).toMatch(/not valid JSON/);
    const empty = await app.inject({ method: 'POST', url: '/v1/txn', headers: { 'content-type': 'application/json' } });
    expectError(empty, 400, 'InvalidArgument');
    const form = await app.inject({ method: 'POST', url: '/v1/txn', payload: 'a=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expectError(form, 400, 'InvalidArgument');
    const tooMany = await txn({ success: Array.from({ length: 129 }, () => ({ get: { key: 'a' } })) });
    expectError(tooMany, 413, 'TooLarge');
    expect(backend.calls).toEqual([]);
  });

  it('runs a txn as one revision: success ops when the compares hold, failure ops otherwise', async () => {
    const first = await txn({
      compare: [{ key: 't/x', target: 'version', op: '=', value: 0 }],
      success: [{ put: { key: 't/x', value: '1' } }, { put: { key: 'dC95', value: 'Mg==', encoding: 'base64' } }, { get: { key: 't/', prefix: true } }],
      failure: [{ get: { key: 't/x' } }],
    });
    expect(first.statusCode).toBe(200);
    const body = json(first);
    expect(body.succeeded).toBe(true);
    expect(body.header.revision).toBe(1);
    expect(first.headers['x-cairn-revision']).toBe('1');
    expect(body.responses[0]).toEqual({ put: {} });
    expect(body.responses[2].get.kvs.map((kv: Body) => [kv.key, kv.value, kv.modRevision])).toEqual([
      ['t/x', '1', 1],
      ['t/y', '2', 1],
    ]);
    const second = json(
      await txn({
        compare: [{ key: 't/x', target: 'version', op: '=', value: 0 }],
        success: [{ delete: { key: 't/', prefix: true } }],
        failure: [{ get: { key: 't/x' } }, { put: { key: 't/x', value: 'again' } }],
      }),
    );
    expect(second.succeeded).toBe(false);
    expect(second.responses[0].get.kvs[0].value).toBe('1');
    expect(second.responses[1].put.prevKv).toMatchObject({ value: '1' });
    const compareValue = json(await txn({ compare: [{ key: 't/x', target: 'value', op: '=', value: 'again' }], success: [{ delete: { key: 't/', prefix: true } }] }));
    expect(compareValue.responses).toEqual([{ delete: { deleted: 2 } }]);
  });

  it('takes a msgpack txn body with raw bytes and answers msgpack', async () => {
    const payload = packr.pack({ success: [{ put: { key: Buffer.from([0xff]), value: Buffer.from([0x00, 0x01]) } }, { get: { key: Buffer.from([0xff]) } }] });
    const r = await app.inject({ method: 'POST', url: '/v1/txn', payload, headers: { 'content-type': 'application/msgpack', accept: 'application/msgpack' } });
    expect(r.statusCode).toBe(200);
    const body = packr.unpack(r.rawPayload) as Body;
    expect(body.succeeded).toBe(true);
    expect(Buffer.from(body.responses[1].get.kvs[0].value)).toEqual(Buffer.from([0x00, 0x01]));
  });

  it('deletes one key, a prefix with prevKvs, and everything with an empty prefix', async () => {
    for (const k of ['d/a', 'd/b', 'e/a', 'f']) await put(`/v1/kv/${k}`, k);
    const one = json(await app.inject({ method: 'DELETE', url: '/v1/kv/f' }));
    expect(one).toMatchObject({ deleted: 1, header: { revision: 5 } });
    expect(one.prevKvs).toBeUndefined();
    const prefix = await app.inject({ method: 'DELETE', url: '/v1/kv/d/?prefix=true&prevKv=true' });
    expect(prefix.headers['x-cairn-revision']).toBe('6');
    expect(json(prefix).deleted).toBe(2);
    expect(json(prefix).prevKvs.map((kv: Body) => [kv.key, kv.value])).toEqual([
      ['d/a', 'd/a'],
      ['d/b', 'd/b'],
    ]);
    expect(json(await app.inject({ method: 'DELETE', url: '/v1/kv/nothing' })).deleted).toBe(0);
    const all = json(await app.inject({ method: 'DELETE', url: '/v1/kv/?prefix=true' }));
    expect(all.deleted).toBe(1);
    expect(json(await app.inject({ url: '/v1/kv/?prefix=true&countOnly=true' })).count).toBe(0);
  });

  it('answers an unknown route, and what the router refuses, with 400 InvalidArgument in the API error shape', async () => {
    const r = await app.inject({ url: '/v1/nothing' });
    expect(expectError(r, 400, 'InvalidArgument').message).toContain('/v1/nothing');
    expectError(await app.inject({ url: '/v1/leases/%FF' }), 400, 'InvalidArgument');
    expectError(await app.inject({ url: `/v1/leases/${'1'.repeat(200)}` }), 400, 'InvalidArgument');
    expectError(await app.inject({ method: 'POST', url: '/v1/nothing', payload: '{', headers: { 'content-type': 'application/json' } }), 400, 'InvalidArgument');
  });
});

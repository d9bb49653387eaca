import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../../src/errors.js';
import type { RunningMember } from '../../../src/server/member.js';
import { hostileClientRequest, type ClientRequest, type Limits } from '../../support/hostile/client-requests.js';
import { replayable } from '../../support/hostile/fast-check-options.js';
import { memberState, waitUntilSettled, type MemberState } from '../../support/hostile/member-state.js';
import { startSoloMember, type SoloMember } from '../../support/solo-member.js';

// Hostile client requests against a real one-member stack through inject(): every one is
// refused with its 4xx and API.md's error body, and neither the Raft log nor the store
// moves. Each generated request is a valid one plus exactly one known-bad ingredient
// (test/support/hostile), so its status and code are known in advance.

const packr = new Packr({ useRecords: false });
const LIMITS: Limits = { maxRequestBytes: 65536, maxKeyBytes: 8192 };

interface Answer {
  statusCode: number;
  headers: Record<string, unknown>;
  rawPayload: Buffer;
}

/** The answer is API.md's error: the status of its code, and a body of exactly {error:{code,message}} in the format asked for. */
function expectApiError(response: Answer, request: { headers?: Record<string, string> }, code: keyof typeof ERROR_CODES, what: string): void {
  expect(response.statusCode, what).toBe(ERROR_CODES[code]);
  const msgpack = request.headers?.accept === 'application/msgpack';
  expect(String(response.headers['content-type']), what).toMatch(msgpack ? /^application\/msgpack/ : /^application\/json/);
  const body = (msgpack ? packr.unpack(response.rawPayload) : JSON.parse(response.rawPayload.toString('utf8'))) as Record<string, unknown>;
  expect(Object.keys(body), what).toEqual(['error']);
  const error = body.error as Record<string, unknown>;
  expect(Object.keys(error).sort(), what).toEqual(['code', 'message']);
  expect(error.code, `${what}: ${String(error.message)}`).toBe(code);
  expect(typeof error.message === 'string' && error.message.length > 0, what).toBe(true);
}

describe('hostile client requests', () => {
  let solo: SoloMember;
  let member: RunningMember;
  let settled: MemberState;
  const app = () => member.clientApp;
  const send = (r: ClientRequest) => app().inject({ method: r.method, url: r.url, headers: r.headers, ...(r.payload ? { payload: r.payload } : {}) });
  const sendJson = (method: ClientRequest['method'], url: string, body: unknown) => send({ method, url, headers: { 'content-type': 'application/json' }, payload: Buffer.from(JSON.stringify(body)) });

  beforeAll(async () => {
    solo = await startSoloMember({ maxRequestBytes: String(LIMITS.maxRequestBytes) });
    member = solo.member;
    await waitUntilSettled(app());
    // Content for "unchanged" to mean something: text and binary keys, over two revisions.
    for (const [url, payload] of [['/v1/kv/app/a', 'one'], ['/v1/kv/app/b%FF', Buffer.from([0, 0xfe])], ['/v1/kv/a', 'x']] as const) {
      expect((await app().inject({ method: 'PUT', url, payload })).statusCode).toBe(200);
    }
    settled = await memberState(app());
    expect(settled.revision).toBeGreaterThanOrEqual(3);
  });
  afterAll(async () => {
    await solo?.close();
  });

  /** The state did not move, and the member still takes a write and a read (not run inside the property: it writes). */
  async function expectUnchangedAndAlive(): Promise<void> {
    expect(await memberState(app())).toEqual(settled);
    expect((await app().inject({ url: '/readyz' })).statusCode).toBe(200);
    expect((await app().inject({ method: 'PUT', url: '/v1/kv/alive', payload: 'yes' })).statusCode).toBe(200);
    expect((await app().inject({ url: '/v1/kv/alive' })).json().kv.value).toBe('yes');
    expect((await app().inject({ method: 'DELETE', url: '/v1/kv/alive' })).statusCode).toBe(200);
    settled = await memberState(app());
  }

  it('refuses every hostile request with its 4xx and API error body; nothing reaches the log or the store (property)', async () => {
    await fc.assert(
      fc.asyncProperty(hostileClientRequest(LIMITS), async (request) => {
        const response = await send(request);
        const what = `${request.ingredient}: ${request.method} ${request.url.slice(0, 120)}`;
        expectApiError(response, request, request.expect.code, what);
        expect(await memberState(app()), what).toEqual(settled);
      }),
      replayable(400),
    );
    await expectUnchangedAndAlive();
  });

  // ---- regressions: each was answered wrongly before the fix next to its check ----

  it('unknown paths and methods get 400 InvalidArgument in the API shape (was fastify 404 {message,error,statusCode})', async () => {
    for (const [method, url] of [['GET', '/v1/nope'], ['GET', '/v1/kv'], ['PATCH', '/v1/kv/a'], ['OPTIONS', '/v1/kv/a'], ['GET', '/'], ['POST', '/v1/kv/a']] as const) {
      const response = await send({ method, url, headers: {} });
      expectApiError(response, {}, 'InvalidArgument', `${method} ${url}`);
      expect(response.json().error.message).toContain(url);
    }
    await expectUnchangedAndAlive();
  });

  it('ids the router cannot decode or that are too long get the API shape (was fastify FST_ERR_BAD_URL 400 / FST_ERR_MAX_PARAM_LENGTH 414)', async () => {
    for (const url of ['/v1/leases/%zz', '/v1/leases/%E0%A4', `/v1/leases/${'1'.repeat(70_000)}`]) {
      expectApiError(await send({ method: 'GET', url, headers: {} }), {}, 'InvalidArgument', url.slice(0, 40));
      expectApiError(await send({ method: 'GET', url, headers: { accept: 'application/msgpack' } }), { headers: { accept: 'application/msgpack' } }, 'InvalidArgument', url.slice(0, 40));
    }
    expectApiError(await send({ method: 'DELETE', url: '/v1/members/%C0', headers: {} }), {}, 'InvalidArgument', 'member %C0');
  });

  it('?encoding= other than base64, or given twice, is refused (was silently answered as text)', async () => {
    for (const url of ['/v1/kv/a?encoding=hex', '/v1/kv/a?encoding=base64&encoding=base64', '/v1/kv/a?encoding=', '/v1/watch/a?encoding=utf8']) {
      expectApiError(await send({ method: 'GET', url, headers: {} }), {}, 'InvalidArgument', url);
    }
    const stillBase64 = await send({ method: 'GET', url: '/v1/kv/a?encoding=base64', headers: {} });
    expect(stillBase64.json().kv).toMatchObject({ key: Buffer.from('a').toString('base64'), encoding: 'base64' });
  });

  it('txn shapes that were silently misread are refused, and nothing is committed', async () => {
    const cases: [string, unknown][] = [
      // was: only the get ran, the put was dropped
      ['two operations in one item', { success: [{ get: { key: 'a' }, put: { key: 'b', value: 'c' } }] }],
      // was: an empty transaction, committed through Raft, answering succeeded:true
      ['misspelt list', { sucess: [{ put: { key: 'b', value: 'c' } }] }],
      ['__proto__ field', JSON.parse('{"__proto__":{"success":[{"put":{"key":"p","value":"q"}}]}}')],
      // was: stored the text "c" as if no encoding had been given
      ['unknown encoding', { success: [{ put: { key: 'b', value: 'c', encoding: 'hex' } }] }],
      // was: read as prefix:false, a single-key delete
      ['prefix not a boolean', { success: [{ delete: { key: 'app/', prefix: 'yes' } }] }],
      ['misspelt prefix', { success: [{ delete: { key: 'app/', prefx: true } }] }],
    ];
    for (const [what, body] of cases) {
      expectApiError(await sendJson('POST', '/v1/txn', body), {}, 'InvalidArgument', what);
      expect(await memberState(app()), what).toEqual(settled);
    }
    // was: a msgpack timestamp decoded to a Date, taken as an empty transaction and committed
    const date = await send({ method: 'POST', url: '/v1/txn', headers: { 'content-type': 'application/msgpack' }, payload: Buffer.from([0xd6, 0xff, 0, 0, 0, 1]) });
    expectApiError(date, {}, 'InvalidArgument', 'msgpack timestamp');
    await expectUnchangedAndAlive();
  });

  it('a txn key past the limit is 413 TooLarge, as in a path (was 400)', async () => {
    const long = 'k'.repeat(LIMITS.maxKeyBytes + 1);
    expectApiError(await sendJson('POST', '/v1/txn', { success: [{ put: { key: long, value: 'v' } }] }), {}, 'TooLarge', 'txn key');
    expectApiError(await send({ method: 'GET', url: `/v1/kv/${long}`, headers: {} }), {}, 'TooLarge', 'path key');
    expectApiError(await sendJson('POST', '/v1/txn', { success: [{ put: { key: '', value: 'v' } }] }), {}, 'InvalidArgument', 'empty txn key');
  });

  it('a member add with learner not a boolean is refused (was: added as a voter, which a one-member cluster cannot then commit without)', async () => {
    const before = (await app().inject({ url: '/v1/members' })).json().members;
    expectApiError(await sendJson('POST', '/v1/members', { peerUrls: ['http://127.0.0.1:1'], learner: 'true' }), {}, 'InvalidArgument', 'learner "true"');
    expect((await app().inject({ url: '/v1/members' })).json().members).toEqual(before);
    await expectUnchangedAndAlive();
  });

  it('unknown fields in cluster bodies are refused (was ignored: {"ttl":5,"id":7} granted a random id)', async () => {
    expectApiError(await sendJson('POST', '/v1/leases', { ttl: 5, id: 7 }), {}, 'InvalidArgument', 'lease id field');
    expectApiError(await sendJson('POST', '/v1/compact', { revision: 1, physical: true }), {}, 'InvalidArgument', 'compact physical');
    expectApiError(await sendJson('POST', '/v1/leader/transfer', { targetId: '0123456789abcdef', force: true }), {}, 'InvalidArgument', 'transfer force');
    expect((await app().inject({ url: '/v1/leases' })).json().leases).toEqual([]);
    await expectUnchangedAndAlive();
  });

  it('a content type that is not a media type says so', async () => {
    const response = await send({ method: 'PUT', url: '/v1/kv/a', headers: { 'content-type': 'text' }, payload: Buffer.from('v') });
    expectApiError(response, {}, 'InvalidArgument', 'content-type text');
    expect(response.json().error.message).toMatch(/content-type "text"/);
  });

  it('well-formed requests naming what does not exist get their 4xx and leave the store as it was', async () => {
    // These pass every check of the request itself and are decided by the store, through
    // the Raft log as in etcd: the commit index may move, the revision and keys may not.
    const cases: [ClientRequest['method'], string, unknown, keyof typeof ERROR_CODES][] = [
      ['PUT', '/v1/kv/a?lease=123456', 'v', 'KeyNotFound'],
      ['POST', '/v1/leases/123456/keepalive', undefined, 'KeyNotFound'],
      ['DELETE', '/v1/leases/123456', undefined, 'KeyNotFound'],
      ['GET', '/v1/leases/123456', undefined, 'KeyNotFound'],
      ['GET', '/v1/kv/a?revision=999999', undefined, 'InvalidArgument'],
      ['POST', '/v1/compact', { revision: 999999 }, 'InvalidArgument'],
      ['DELETE', '/v1/members/0123456789abcdef', undefined, 'KeyNotFound'],
      ['POST', '/v1/members/0123456789abcdef/promote', undefined, 'KeyNotFound'],
      ['POST', '/v1/leader/transfer', { targetId: '0123456789abcdef' }, 'KeyNotFound'],
      ['POST', '/v1/leases', { ttl: 0 }, 'InvalidArgument'],
    ];
    for (const [method, url, body, code] of cases) {
      const response = typeof body === 'string' ? await send({ method, url, headers: {}, payload: Buffer.from(body) }) : body === undefined ? await send({ method, url, headers: {} }) : await sendJson(method, url, body);
      expectApiError(response, {}, code, `${method} ${url}`);
      const now = await memberState(app());
      expect({ revision: now.revision, hash: now.hash, listing: now.listing, term: now.term }, url).toEqual({ revision: settled.revision, hash: settled.hash, listing: settled.listing, term: settled.term });
    }
    // Not a hostile request: let the other tests compare against the state as it now is.
    settled = await memberState(app());
  });
});

import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningMember } from '../../../src/server/member.js';
import { startSoloMember, type SoloMember } from '../../support/solo-member.js';

// The client API through inject() (no sockets) on a real one-member stack:
// LevelDB, the Raft loop, the MVCC store, the watch hub.

const packr = new Packr({ useRecords: false });

describe('client API routes', () => {
  let solo: SoloMember;
  let member: RunningMember;
  const app = () => member.clientApp;
  const json = (body: string) => JSON.parse(body) as Record<string, any>;

  beforeAll(async () => {
    solo = await startSoloMember();
    member = solo.member;
  });
  afterAll(async () => {
    await solo?.close();
  });

  it('puts and gets text; every answer has the header and X-Cairn-Revision', async () => {
    const put = await app().inject({ method: 'PUT', url: '/v1/kv/app/db/url', payload: 'postgres://x' });
    expect(put.statusCode).toBe(200);
    const rev = json(put.body).header.revision;
    expect(put.headers['x-cairn-revision']).toBe(String(rev));
    const get = await app().inject({ url: '/v1/kv/app/db/url' });
    expect(json(get.body).kv).toMatchObject({ key: 'app/db/url', value: 'postgres://x', createRevision: rev, modRevision: rev, version: 1, lease: 0 });
  });

  it('keeps bytes that are not UTF-8: base64 with encoding in JSON, raw in msgpack', async () => {
    const bytes = Buffer.from([0xff, 0x00, 0xfe]);
    await app().inject({ method: 'PUT', url: '/v1/kv/bin%FF', payload: bytes, headers: { 'content-type': 'application/octet-stream' } });
    const got = json((await app().inject({ url: '/v1/kv/bin%FF' })).body).kv;
    expect(got.encoding).toBe('base64');
    expect(Buffer.from(got.value, 'base64')).toEqual(bytes);
    expect(Buffer.from(got.key, 'base64')).toEqual(Buffer.from([0x62, 0x69, 0x6e, 0xff]));
    const mp = await app().inject({ url: '/v1/kv/bin%FF', headers: { accept: 'application/msgpack' } });
    expect(mp.headers['content-type']).toContain('application/msgpack');
    expect(Buffer.from((packr.unpack(mp.rawPayload) as { kv: { value: Uint8Array } }).kv.value)).toEqual(bytes);
    const forced = json((await app().inject({ url: '/v1/kv/app/db/url?encoding=base64' })).body).kv;
    expect(Buffer.from(forced.value, 'base64').toString()).toBe('postgres://x');
  });

  it('ranges by prefix with limit, count and more', async () => {
    for (const k of ['r/a', 'r/b', 'r/c']) await app().inject({ method: 'PUT', url: `/v1/kv/${k}`, payload: k });
    const r = json((await app().inject({ url: '/v1/kv/r/?prefix=true&limit=2' })).body);
    expect(r.kvs.map((kv: { key: string }) => kv.key)).toEqual(['r/a', 'r/b']);
    expect(r).toMatchObject({ count: 3, more: true });
  });

  it('hashes the live keys at a revision: the same later, different at another revision', async () => {
    const hashAt = async (revision?: number) => json((await app().inject({ url: `/v1/hash${revision ? `?revision=${revision}` : ''}` })).body);
    const rev = json((await app().inject({ method: 'PUT', url: '/v1/kv/h/a', payload: 'one' })).body).header.revision;
    const now = await hashAt();
    expect(now).toMatchObject({ revision: rev });
    expect(now.hash).toMatch(/^[0-9a-f]{64}$/);
    await app().inject({ method: 'PUT', url: '/v1/kv/h/a', payload: 'two' });
    expect((await hashAt(rev)).hash).toBe(now.hash);
    expect((await hashAt(rev + 1)).hash).not.toBe(now.hash);
    await app().inject({ method: 'DELETE', url: '/v1/kv/h/a' });
    expect((await hashAt(rev)).hash).toBe(now.hash);
    const future = await app().inject({ url: `/v1/hash?revision=${rev + 100}` });
    expect(future.statusCode).toBe(400);
  });

  it('refuses a txn that writes one key twice in a branch, as etcd does', async () => {
    const before = json((await app().inject({ url: '/v1/status' })).body).revision;
    const put = (key: string) => ({ put: { key, value: 'v' } });
    for (const success of [[put('d/a'), put('d/a')], [put('d/a'), { delete: { key: 'd/a' } }], [put('d/a'), { delete: { key: 'd/', prefix: true } }]]) {
      const r = await app().inject({ method: 'POST', url: '/v1/txn', payload: { compare: [], success } });
      expect(r.statusCode, JSON.stringify(success)).toBe(400);
      expect(json(r.body).error.message).toContain('twice');
    }
    const fine = await app().inject({ method: 'POST', url: '/v1/txn', payload: { compare: [], success: [put('d/a'), put('d/b'), { delete: { key: 'e/', prefix: true } }, { delete: { key: 'e/x' } }] } });
    expect(fine.statusCode).toBe(200);
    expect(json(fine.body).header.revision).toBe(before + 1);
  });

  it('refuses bad input with 400 InvalidArgument and changes nothing', async () => {
    const before = json((await app().inject({ url: '/v1/status' })).body).revision;
    for (const url of ['/v1/kv/x?limit=abc', '/v1/kv/x?revision=-1', '/v1/kv/x?bogus=1', '/v1/kv/', '/v1/kv/%zz']) {
      const r = await app().inject({ url });
      expect(r.statusCode, url).toBe(400);
      expect(json(r.body).error.code).toBe('InvalidArgument');
    }
    const badTxn = await app().inject({ method: 'POST', url: '/v1/txn', payload: '{"compare":[{"key":"a","target":"nope","op":"=","value":1}]}', headers: { 'content-type': 'application/json' } });
    expect(badTxn.statusCode).toBe(400);
    const notJson = await app().inject({ method: 'POST', url: '/v1/txn', payload: '{', headers: { 'content-type': 'application/json' } });
    expect(json(notJson.body).error.code).toBe('InvalidArgument');
    const badPut = await app().inject({ method: 'PUT', url: '/v1/kv/x?ifVersion=soon', payload: 'v' });
    expect(badPut.statusCode).toBe(400);
    expect(json((await app().inject({ url: '/v1/status' })).body).revision).toBe(before);
  });

  it('404 KeyNotFound, 412 CompareFailed with the current kv, 410 Compacted with compactRevision', async () => {
    const missing = await app().inject({ url: '/v1/kv/nope' });
    expect(missing.statusCode).toBe(404);
    expect(json(missing.body).error.code).toBe('KeyNotFound');
    await app().inject({ method: 'PUT', url: '/v1/kv/c', payload: '1' });
    const cas = await app().inject({ method: 'PUT', url: '/v1/kv/c?ifVersion=0', payload: '2' });
    expect(cas.statusCode).toBe(412);
    expect(json(cas.body).error).toMatchObject({ code: 'CompareFailed', kv: { key: 'c', value: '1' } });
    const rev = json((await app().inject({ method: 'PUT', url: '/v1/kv/c', payload: '3' })).body).header.revision;
    const compact = await app().inject({ method: 'POST', url: '/v1/compact', payload: { revision: rev } });
    expect(compact.statusCode).toBe(200);
    const old = await app().inject({ url: `/v1/kv/c?revision=${rev - 1}` });
    expect(old.statusCode).toBe(410);
    expect(json(old.body).error).toMatchObject({ code: 'Compacted', compactRevision: rev });
  });

  it('413 TooLarge for a key past the limit', async () => {
    const r = await app().inject({ method: 'PUT', url: `/v1/kv/${'k'.repeat(9000)}`, payload: 'v' });
    expect(r.statusCode).toBe(413);
    expect(json(r.body).error.code).toBe('TooLarge');
  });

  it('a transaction is one revision; DELETE with prefix returns prevKvs', async () => {
    const t = await app().inject({
      method: 'POST',
      url: '/v1/txn',
      headers: { 'content-type': 'application/json' },
      payload: { compare: [{ key: 't/x', target: 'version', op: '=', value: 0 }], success: [{ put: { key: 't/x', value: '1' } }, { put: { key: 't/y', value: '2' } }], failure: [] },
    });
    const body = json(t.body);
    expect(body.succeeded).toBe(true);
    const x = json((await app().inject({ url: '/v1/kv/t/x' })).body).kv;
    const y = json((await app().inject({ url: '/v1/kv/t/y' })).body).kv;
    expect(x.modRevision).toBe(body.header.revision);
    expect(y.modRevision).toBe(body.header.revision);
    const del = json((await app().inject({ method: 'DELETE', url: '/v1/kv/t/?prefix=true&prevKv=true' })).body);
    expect(del.deleted).toBe(2);
    expect(del.prevKvs.map((kv: { key: string }) => kv.key)).toEqual(['t/x', 't/y']);
  });

  it('leases: grant, attach, info, revoke deletes the keys', async () => {
    const grant = json((await app().inject({ method: 'POST', url: '/v1/leases', payload: { ttl: 60 } })).body);
    await app().inject({ method: 'PUT', url: `/v1/kv/leased?lease=${grant.id}`, payload: 'v' });
    const info = json((await app().inject({ url: `/v1/leases/${grant.id}` })).body);
    expect(info).toMatchObject({ id: grant.id, grantedTtl: 60, keys: ['leased'] });
    await app().inject({ method: 'DELETE', url: `/v1/leases/${grant.id}` });
    expect((await app().inject({ url: '/v1/kv/leased' })).statusCode).toBe(404);
  });

  it('status, members, livez, readyz and metrics answer', async () => {
    const status = json((await app().inject({ url: '/v1/status' })).body);
    expect(status).toMatchObject({ name: 'solo', memberId: member.id, leaderId: member.id, isLearner: false });
    const members = json((await app().inject({ url: '/v1/members' })).body).members;
    expect(members).toHaveLength(1);
    expect((await app().inject({ url: '/livez' })).statusCode).toBe(200);
    expect((await app().inject({ url: '/readyz' })).statusCode).toBe(200);
    expect((await app().inject({ url: '/metrics' })).body).toMatch(/^cairn_raft_is_leader 1$/m);
  });
});

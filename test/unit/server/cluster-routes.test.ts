import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildClientApp, type ClientAppOptions } from '../../../src/server/app.js';
import { FakeBackend } from './fake-backend.js';

// Leases, cluster and maintenance, health and metrics, and request deadlines,
// through inject() on an in-memory backend.

type Body = Record<string, any>;
const json = (r: LightMyRequestResponse): Body => JSON.parse(r.body) as Body;

describe('lease, cluster and health routes', () => {
  let backend: FakeBackend;
  let app: FastifyInstance;
  const start = (options: Partial<ClientAppOptions> = {}): void => {
    backend = new FakeBackend();
    app = buildClientApp({ backend, ...options });
  };
  const post = (url: string, payload?: object) => app.inject({ method: 'POST', url, ...(payload ? { payload } : {}) });

  beforeEach(() => start());
  afterEach(async () => {
    await app.close();
  });

  function expectError(r: LightMyRequestResponse, status: number, code: string): Body {
    expect(r.statusCode, r.body).toBe(status);
    expect(json(r).error.code).toBe(code);
    return json(r).error as Body;
  }

  it('grants, keeps alive, describes, lists and revokes leases; revoking deletes the keys', async () => {
    const grant = await post('/v1/leases', { ttl: 60 });
    expect(grant.statusCode).toBe(200);
    expect(grant.headers['x-cairn-revision']).toBe('0');
    const { id } = json(grant);
    expect(json(grant)).toMatchObject({ id, ttl: 60, header: { revision: 0 } });
    await app.inject({ method: 'PUT', url: `/v1/kv/leased?lease=${id}`, payload: 'v' });
    await app.inject({ method: 'PUT', url: `/v1/kv/bin%FF?lease=${id}`, payload: 'v' });
    expect(json(await app.inject({ url: '/v1/kv/leased' })).kv.lease).toBe(id);
    const keepAlive = await post(`/v1/leases/${id}/keepalive`);
    expect(keepAlive.statusCode).toBe(200);
    expect(json(keepAlive)).toMatchObject({ id, ttl: 60 });
    const info = await app.inject({ url: `/v1/leases/${id}` });
    expect(json(info)).toMatchObject({ id, ttl: 60, grantedTtl: 60, encoding: 'base64' });
    expect(json(info).keys.map((k: string) => Buffer.from(k, 'base64'))).toEqual([Buffer.from('bin\xff', 'latin1'), Buffer.from('leased')]);
    expect(json(await app.inject({ url: '/v1/leases' })).leases).toEqual([{ id }]);
    const revoke = await app.inject({ method: 'DELETE', url: `/v1/leases/${id}` });
    expect(revoke.statusCode).toBe(200);
    expect(revoke.headers['x-cairn-revision']).toBe('3');
    expectError(await app.inject({ url: '/v1/kv/leased' }), 404, 'KeyNotFound');
    expectError(await app.inject({ url: `/v1/leases/${id}` }), 404, 'KeyNotFound');
    expectError(await app.inject({ method: 'PUT', url: `/v1/kv/x?lease=${id}`, payload: 'v' }), 404, 'KeyNotFound');
  });

  it('lists lease keys as text when they are UTF-8', async () => {
    const { id } = json(await post('/v1/leases', { ttl: 5 }));
    await app.inject({ method: 'PUT', url: `/v1/kv/a/b?lease=${id}`, payload: 'v' });
    expect(json(await app.inject({ url: `/v1/leases/${id}` }))).toMatchObject({ keys: ['a/b'] });
    expect(json(await app.inject({ url: `/v1/leases/${id}` })).encoding).toBeUndefined();
  });

  it('refuses malformed lease requests without calling the backend', async () => {
    for (const body of [{ ttl: 0 }, { ttl: -1 }, { ttl: 1.5 }, { ttl: '5' }, {}, { ttl: 5, id: 3 }]) expectError(await post('/v1/leases', body), 400, 'InvalidArgument');
    expectError(await post('/v1/leases'), 400, 'InvalidArgument');
    for (const id of ['0', 'abc', '-1', '1e3']) {
      expectError(await app.inject({ url: `/v1/leases/${id}` }), 400, 'InvalidArgument');
      expectError(await post(`/v1/leases/${id}/keepalive`), 400, 'InvalidArgument');
    }
    expectError(await app.inject({ url: '/v1/leases?all=true' }), 400, 'InvalidArgument');
    expect(backend.calls).toEqual([]);
  });

  it('answers status and members, and changes membership', async () => {
    const status = await app.inject({ url: '/v1/status' });
    expect(status.headers['x-cairn-revision']).toBe('0');
    expect(json(status)).toMatchObject({ memberId: '00000000000000a1', name: 'fake', leaderId: '00000000000000a1', revision: 0, isLearner: false, header: { raftTerm: 3 } });
    const members = await app.inject({ url: '/v1/members' });
    expect(members.headers['x-cairn-revision']).toBe('0');
    expect(json(members).members).toHaveLength(1);
    const added = json(await post('/v1/members', { peerUrls: ['http://10.0.0.2:2380'], learner: true }));
    expect(added.member).toMatchObject({ peerUrls: ['http://10.0.0.2:2380'], isLearner: true });
    expect(added.members).toHaveLength(2);
    const id = added.member.id as string;
    expect(json(await post(`/v1/members/${id}/promote`)).members[1].isLearner).toBe(false);
    expect((await post('/v1/leader/transfer', { targetId: id })).statusCode).toBe(200);
    expect(json(await app.inject({ method: 'DELETE', url: `/v1/members/${id.toUpperCase()}` })).members).toHaveLength(1);
    expectError(await app.inject({ method: 'DELETE', url: `/v1/members/${id}` }), 404, 'KeyNotFound');
  });

  it('refuses malformed cluster requests without calling the backend', async () => {
    const bad: [string, object | undefined][] = [
      ['/v1/members', { peerUrls: [] }],
      ['/v1/members', { peerUrls: ['10.0.0.2:2380'] }],
      ['/v1/members', { peerUrls: ['ftp://h:1'] }],
      ['/v1/members', { peerUrls: ['http://h'] }],
      ['/v1/members', { peerUrls: 'http://h:1' }],
      ['/v1/members', { peerUrls: ['http://h:1'], learner: 'yes' }],
      ['/v1/members/123/promote', undefined],
      ['/v1/leader/transfer', { targetId: 'leader' }],
      ['/v1/leader/transfer', {}],
      ['/v1/compact', { revision: 0 }],
      ['/v1/compact', { revision: 'latest' }],
      ['/v1/compact', { revision: 3, physical: true }],
    ];
    for (const [url, body] of bad) expectError(await post(url, body), 400, 'InvalidArgument');
    expectError(await app.inject({ method: 'DELETE', url: '/v1/members/zz' }), 400, 'InvalidArgument');
    expectError(await app.inject({ url: '/v1/status?verbose=1' }), 400, 'InvalidArgument');
    expect(backend.calls).toEqual([]);
  });

  it('compacts; compacting again or into the future is refused by the backend', async () => {
    for (let i = 0; i < 3; i++) await app.inject({ method: 'PUT', url: '/v1/kv/k', payload: String(i) });
    const r = await post('/v1/compact', { revision: 2 });
    expect(r.statusCode).toBe(200);
    expect(r.headers['x-cairn-revision']).toBe('3');
    expect(expectError(await post('/v1/compact', { revision: 2 }), 410, 'Compacted').compactRevision).toBe(2);
    expectError(await post('/v1/compact', { revision: 9 }), 400, 'InvalidArgument');
  });

  it('streams a snapshot', async () => {
    await app.inject({ method: 'PUT', url: '/v1/kv/k', payload: 'v' });
    const r = await app.inject({ url: '/v1/snapshot' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('application/octet-stream');
    expect(r.body).toBe('cairn-snapshot:1');
  });

  it('answers livez, readyz (503 Unavailable with the reason when not ready) and metrics', async () => {
    const live = await app.inject({ url: '/livez' });
    expect([live.statusCode, json(live)]).toEqual([200, { ok: true }]);
    expect((await app.inject({ url: '/readyz' })).statusCode).toBe(200);
    backend.readyState = { ok: false, reason: 'no leader' };
    const notReady = await app.inject({ url: '/readyz' });
    expect(notReady.statusCode).toBe(503);
    expect(json(notReady)).toMatchObject({ ok: false, reason: 'no leader', error: { code: 'Unavailable', message: 'no leader' } });
    const metrics = await app.inject({ url: '/metrics' });
    expect(metrics.headers['content-type']).toContain('text/plain');
    expect(metrics.body).toMatch(/^cairn_mvcc_revision 0$/m);
  });

  it('answers 504 Timeout when the backend does not answer within requestTimeoutMs, even if it ignores the signal', async () => {
    await app.close();
    start({ requestTimeoutMs: 50 });
    backend.hang.add('put');
    const started = Date.now();
    const r = await app.inject({ method: 'PUT', url: '/v1/kv/slow', payload: 'v' });
    expect(expectError(r, 504, 'Timeout').message).toMatch(/may or may not have been applied/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(Date.now() - started).toBeLessThan(2000);
    backend.ignoreSignal = true;
    backend.hang.add('range');
    expectError(await app.inject({ url: '/v1/kv/slow' }), 504, 'Timeout');
  });

  it('answers 500 Internal (and logs) when the backend fails with something that is not an API error', async () => {
    backend.status = async () => {
      throw new TypeError('a bug');
    };
    const r = await app.inject({ url: '/v1/status' });
    expect(r.statusCode).toBe(500);
    expect(json(r).error).toEqual({ code: 'Internal', message: 'internal error (logged by the member)' });
  });
});

// Hostile client requests: each starts from a valid request and adds exactly one
// ingredient known to make it invalid (a malformed escape, an unknown or repeated
// parameter, a bad value, a body past the limit, ...), so it must be refused, and
// with a known status and code, before anything reaches the Raft log.

import fc from 'fast-check';
import { anyKeyPath } from './keys.js';
import { INVALID, TOO_LARGE, hostileTxnBody, validTxn, type Expected } from './txn-bodies.js';

export type Method = 'GET' | 'PUT' | 'POST' | 'DELETE' | 'PATCH' | 'OPTIONS';

export interface ClientRequest {
  readonly method: Method;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly payload?: Buffer;
}

export interface HostileClientRequest extends ClientRequest {
  /** What makes it invalid, for the failure message. */
  readonly ingredient: string;
  readonly expect: Expected;
}

export interface Limits {
  readonly maxRequestBytes: number;
  readonly maxKeyBytes: number;
}

interface UrlRoute {
  readonly method: Method;
  readonly path: '/v1/kv/' | '/v1/watch/' | '/v1/txn' | '/v1/hash';
  readonly booleans: readonly string[];
  readonly integers: readonly string[];
  readonly encoding: boolean;
  /** Parameters that may be added with any valid value and change nothing about the outcome. */
  readonly harmless: readonly string[];
}

const ROUTES: readonly UrlRoute[] = [
  { method: 'GET', path: '/v1/kv/', booleans: ['prefix', 'keysOnly', 'countOnly', 'serializable'], integers: ['revision', 'limit'], encoding: true, harmless: ['keysOnly', 'countOnly', 'serializable', 'limit'] },
  { method: 'PUT', path: '/v1/kv/', booleans: ['prevKv'], integers: ['lease', 'ifVersion', 'ifModRevision'], encoding: true, harmless: ['prevKv'] },
  { method: 'DELETE', path: '/v1/kv/', booleans: ['prefix', 'prevKv'], integers: ['ifModRevision'], encoding: true, harmless: ['prevKv'] },
  { method: 'GET', path: '/v1/watch/', booleans: ['prefix', 'prevKv'], integers: ['startRevision'], encoding: true, harmless: ['prevKv'] },
  { method: 'POST', path: '/v1/txn', booleans: [], integers: [], encoding: true, harmless: [] },
  { method: 'GET', path: '/v1/hash', booleans: [], integers: ['revision'], encoding: false, harmless: [] },
];
const KEY_ROUTES = ROUTES.filter((r) => r.path.endsWith('/'));

const BOOLEAN_VALUES = ['', 'true', 'false', '1', '0'];
const validBoolean = fc.constantFrom(...BOOLEAN_VALUES);
const validInteger = fc.oneof(fc.nat({ max: 1000 }).map(String), fc.constant('999999999999999'));
const validValue = (route: UrlRoute, name: string): fc.Arbitrary<string> =>
  route.booleans.includes(name) ? validBoolean : route.integers.includes(name) ? validInteger : fc.constant('base64');
const allowed = (route: UrlRoute): string[] => [...route.booleans, ...route.integers, ...(route.encoding ? ['encoding'] : [])];

function query(pairs: readonly (readonly [string, string])[]): string {
  return pairs.length === 0 ? '' : `?${pairs.map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`).join('&')}`;
}

/** Harmless parameters of a route with valid values, in any order. */
function harmless(route: UrlRoute): fc.Arbitrary<[string, string][]> {
  const names = route.encoding ? [...route.harmless, 'encoding'] : route.harmless;
  if (names.length === 0) return fc.constant([]);
  return fc.subarray([...names]).chain((chosen) => fc.tuple(...chosen.map((name) => validValue(route, name).map((v): [string, string] => [name, v])))).map((pairs) => [...pairs]);
}

const JSON_HEADERS = { 'content-type': 'application/json' };

/** A valid request on `route` whose query gets `bad` added at a random place among harmless parameters. */
function withBadQuery(route: UrlRoute, bad: fc.Arbitrary<[string, string][]>, ingredient: string): fc.Arbitrary<HostileClientRequest> {
  return fc.tuple(anyKeyPath, harmless(route), bad, fc.nat(), validTxn).map(([key, good, badPairs, at, txn]) => {
    const i = at % (good.length + 1);
    const pairs = [...good.slice(0, i), ...badPairs, ...good.slice(i)];
    const path = route.path.endsWith('/') ? `${route.path}${key}` : route.path;
    const body = route.method === 'PUT' ? Buffer.from('value') : route.path === '/v1/txn' ? Buffer.from(JSON.stringify(txn)) : undefined;
    return { method: route.method, url: `${path}${query(pairs)}`, headers: body ? JSON_HEADERS : {}, ...(body ? { payload: body } : {}), ingredient: `${route.method} ${route.path}: ${ingredient}`, expect: INVALID };
  });
}

const paramName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,15}$/);
const anyText = fc.string({ maxLength: 12 });

function badQueries(route: UrlRoute): fc.Arbitrary<HostileClientRequest>[] {
  const names = allowed(route);
  const out = [
    withBadQuery(route, fc.tuple(paramName.filter((n) => !names.includes(n)), anyText).map(([n, v]) => [[n, v]]), 'unknown parameter'),
  ];
  if (names.length > 0) {
    const repeated = fc.constantFrom(...names).chain((n) => fc.tuple(validValue(route, n), validValue(route, n)).map(([a, b]): [string, string][] => [[n, a], [n, b]]));
    out.push(withBadQuery(route, repeated, 'repeated parameter'));
  }
  if (route.booleans.length > 0) {
    const bad = fc.tuple(fc.constantFrom(...route.booleans), anyText.filter((v) => !BOOLEAN_VALUES.includes(v))).map(([n, v]): [string, string][] => [[n, v]]);
    out.push(withBadQuery(route, bad, 'not a boolean'));
  }
  if (route.integers.length > 0) {
    const notCount = fc.oneof(anyText, fc.constantFrom('-1', '1.5', '1e3', ' 1', '0x10', '1234567890123456', '')).filter((v) => !/^\d{1,15}$/.test(v));
    out.push(withBadQuery(route, fc.tuple(fc.constantFrom(...route.integers), notCount).map(([n, v]) => [[n, v]]), 'not a count'));
  }
  if (route.encoding) out.push(withBadQuery(route, anyText.filter((v) => v !== 'base64').map((v) => [['encoding', v]]), 'unknown encoding'));
  return out;
}

/** Keys in paths that cannot be used: a malformed escape, past the limit, or empty without prefix=true. */
function badKeyPaths(limits: Limits): fc.Arbitrary<HostileClientRequest> {
  const notHex = fc.constantFrom(...'gGzZ-_~%/'.split(''));
  // Broken whatever follows; '%' and '%a' only at the end of the key (followed by "ab", "%a" would be an escape).
  const broken = fc.oneof(notHex.map((c) => `%${c}`), fc.constantFrom(...'0123456789abcdef'.split('')).chain((h) => notHex.map((c) => `%${h}${c}`)));
  const malformed = fc.oneof(
    fc.tuple(anyKeyPath, broken, anyKeyPath).map(([before, escape, after]) => `${before}${escape}${after}`),
    fc.tuple(anyKeyPath, fc.oneof(broken, fc.constantFrom('%', '%a', '%F'))).map(([before, escape]) => `${before}${escape}`),
  );
  const long = fc.tuple(fc.integer({ min: limits.maxKeyBytes + 1, max: limits.maxKeyBytes + 500 }), fc.boolean()).map(([n, escaped]) => (escaped ? '%FF'.repeat(n) : 'k'.repeat(n)));
  const onRoute = (paths: fc.Arbitrary<string>, ingredient: string, expect: Expected, routes: readonly UrlRoute[]) =>
    fc.tuple(fc.constantFrom(...routes), paths).chain(([route, path]) =>
      harmless(route).map((good) => ({
        method: route.method,
        url: `${route.path}${path}${query(good)}`,
        headers: {},
        ...(route.method === 'PUT' ? { payload: Buffer.from('v') } : {}),
        ingredient: `${route.method} ${route.path}: ${ingredient}`,
        expect,
      })),
    );
  return fc.oneof(onRoute(malformed, 'malformed escape in the key', INVALID, KEY_ROUTES), onRoute(long, 'key past the limit', TOO_LARGE, KEY_ROUTES), onRoute(fc.constant(''), 'empty key without prefix', INVALID, KEY_ROUTES));
}

const KNOWN_TOP = ['kv', 'watch', 'txn', 'compact', 'leases', 'status', 'hash', 'members', 'leader', 'snapshot', 'livez', 'readyz', 'metrics'];

/** Paths no route serves, and methods a route does not take. */
const unknownRoutes: fc.Arbitrary<HostileClientRequest> = fc.oneof(
  fc.tuple(fc.constantFrom<Method>('GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS'), fc.constantFrom('/', '/v1/', '/v2/', '/v1/kv-'), fc.stringMatching(/^[a-z0-9_-]{0,12}$/).filter((s) => !KNOWN_TOP.includes(s))).map(([method, prefix, rest]) => ({
    method,
    url: `${prefix}${rest}`,
    headers: {},
    ingredient: 'no such path',
    expect: INVALID,
  })),
  fc.tuple(anyKeyPath, fc.constantFrom<[Method, string]>(['PATCH', '/v1/kv/'], ['OPTIONS', '/v1/kv/'], ['POST', '/v1/kv/'], ['PUT', '/v1/watch/'], ['GET', '/v1/txn'], ['PUT', '/v1/txn'], ['GET', '/v1/compact'], ['DELETE', '/v1/status'], ['PUT', '/v1/members'], ['POST', '/v1/snapshot'], ['DELETE', '/v1/leases'])).map(
    ([key, [method, path]]) => ({ method, url: path.endsWith('/') ? `${path}${key}` : path, headers: {}, ingredient: `no ${method} on ${path}`, expect: INVALID }),
  ),
  fc.constantFrom('/v1/kv', '/v1/watch').map((url) => ({ method: 'GET' as Method, url, headers: {}, ingredient: 'key route without its slash', expect: INVALID })),
);

/** Bodies past --max-request-bytes, and content types that are not media types. */
function badBodies(limits: Limits): fc.Arbitrary<HostileClientRequest> {
  const target = fc.oneof(anyKeyPath.map((key): [Method, string] => ['PUT', `/v1/kv/${key}`]), fc.constant<[Method, string]>(['POST', '/v1/txn']));
  const notMediaType = fc.oneof(fc.constantFrom('', ' ', ';', '/', 'a/', '/b', 'a b/c', 'a//b', 'a/b/c', '(', 'é/b'), fc.stringMatching(/^[a-z]{1,10}$/));
  return fc.oneof(
    fc.tuple(target, fc.integer({ min: 1, max: 2000 })).map(([[method, url], extra]) => ({
      method,
      url,
      headers: { 'content-type': 'application/octet-stream' },
      payload: Buffer.alloc(limits.maxRequestBytes + extra, 0x61),
      ingredient: 'body past the limit',
      expect: TOO_LARGE,
    })),
    fc.tuple(target, notMediaType).map(([[method, url], contentType]) => ({ method, url, headers: { 'content-type': contentType }, payload: Buffer.from('{}'), ingredient: `content-type ${JSON.stringify(contentType)}`, expect: INVALID })),
  );
}

const txnBodies = (limits: Limits): fc.Arbitrary<HostileClientRequest> =>
  hostileTxnBody(limits.maxKeyBytes).map((b) => ({ method: 'POST', url: '/v1/txn', headers: { 'content-type': b.contentType }, payload: b.payload, ingredient: b.ingredient, expect: b.expect }));

/** Ids in paths that are not ids: leases are positive integers of up to 15 digits, members 16 lowercase hex digits. */
const badIds: fc.Arbitrary<HostileClientRequest> = (() => {
  const notLease = fc.oneof(fc.stringMatching(/^[0-9]{0,4}[a-zA-Z_~-][a-zA-Z0-9_~-]{0,6}$/), fc.constantFrom('0', '000', '1234567890123456', '%zz', '%E0%A4', 'x'.repeat(70_000)));
  const notMember = fc.oneof(fc.stringMatching(/^[0-9a-f]{1,15}$/), fc.stringMatching(/^[0-9a-f]{17,20}$/), fc.stringMatching(/^[0-9A-F]{16}$/).filter((s) => /[A-F]/.test(s)), fc.constantFrom('0123456789abcdeg', '%C0', '%zz'));
  return fc.oneof(
    fc.tuple(notLease, fc.constantFrom<[Method, string]>(['GET', ''], ['DELETE', ''], ['POST', '/keepalive'])).map(([id, [method, tail]]) => ({ method, url: `/v1/leases/${id}${tail}`, headers: {}, ingredient: 'not a lease id', expect: INVALID })),
    fc.tuple(notMember, fc.constantFrom<[Method, string]>(['DELETE', ''], ['POST', '/promote'])).map(([id, [method, tail]]) => ({ method, url: `/v1/members/${id}${tail}`, headers: {}, ingredient: 'not a member id', expect: INVALID })),
  );
})();

/** JSON bodies of the cluster routes with one bad field. */
const badClusterBodies: fc.Arbitrary<HostileClientRequest> = (() => {
  const notCount = fc.oneof(fc.integer({ max: -1 }), fc.constantFrom(1.5, 2 ** 53, '5', null, true, [], {}));
  const post = (url: string, ingredient: string, body: fc.Arbitrary<unknown>): fc.Arbitrary<HostileClientRequest> =>
    body.map((b) => ({ method: 'POST', url, headers: JSON_HEADERS, payload: Buffer.from(JSON.stringify(b)), ingredient, expect: INVALID }));
  const extra = fc.stringMatching(/^[a-z][a-zA-Z]{0,8}$/);
  const goodUrl = fc.integer({ min: 1, max: 65535 }).map((port) => `http://127.0.0.1:${port}`);
  const notPeerUrls = fc.oneof(fc.constantFrom('http://h:1', null, 5, {}), fc.constant(['no-url']), fc.constant(['http://h:1/path']), fc.constant(['ftp://h:1']), fc.constant(['http://h']), fc.constant([7]));
  return fc.oneof(
    post('/v1/compact', 'compact: bad revision', notCount.map((revision) => ({ revision }))),
    post('/v1/compact', 'compact: no revision', fc.constant({})),
    post('/v1/compact', 'compact: unknown field', fc.tuple(extra.filter((n) => n !== 'revision'), fc.nat()).map(([n, v]) => ({ revision: 1, [n]: v }))),
    post('/v1/leases', 'lease grant: bad ttl', fc.oneof(notCount, fc.constant(0)).map((ttl) => ({ ttl }))),
    post('/v1/leases', 'lease grant: unknown field', fc.tuple(extra.filter((n) => n !== 'ttl'), fc.nat()).map(([n, v]) => ({ ttl: 5, [n]: v }))),
    post('/v1/leases', 'lease grant: not an object', fc.constantFrom([], 5, 'ttl', null)),
    post('/v1/members', 'member add: bad peerUrls', notPeerUrls.map((peerUrls) => ({ peerUrls }))),
    post('/v1/members', 'member add: learner not a boolean', fc.tuple(goodUrl, fc.constantFrom('true', 1, null, [])).map(([url, learner]) => ({ peerUrls: [url], learner }))),
    post('/v1/members', 'member add: unknown field', fc.tuple(goodUrl, extra.filter((n) => n !== 'peerUrls' && n !== 'learner')).map(([url, n]) => ({ peerUrls: [url], [n]: true }))),
    post('/v1/leader/transfer', 'transfer: bad target', fc.oneof(fc.stringMatching(/^[0-9a-f]{0,15}$/), fc.constantFrom(5, null, 'ABCDEF0123456789')).map((targetId) => ({ targetId }))),
    post('/v1/leader/transfer', 'transfer: unknown field', extra.filter((n) => n !== 'targetId').map((n) => ({ targetId: '0123456789abcdef', [n]: 1 }))),
  );
})();

const badLastEventId: fc.Arbitrary<HostileClientRequest> = fc
  .tuple(anyKeyPath, fc.oneof(fc.stringMatching(/^[0-9]{16,18}$/), fc.constantFrom('-1', 'x', '1.5', ' 1', '')))
  .map(([key, id]) => ({ method: 'GET', url: `/v1/watch/${key}`, headers: { 'last-event-id': id }, ingredient: `Last-Event-ID ${JSON.stringify(id)}`, expect: INVALID }));

/** Any hostile client request, possibly asking for msgpack answers. */
export function hostileClientRequest(limits: Limits): fc.Arbitrary<HostileClientRequest> {
  const any = fc.oneof(
    { weight: 4, arbitrary: fc.oneof(...ROUTES.flatMap(badQueries)) },
    { weight: 2, arbitrary: badKeyPaths(limits) },
    { weight: 1, arbitrary: unknownRoutes },
    { weight: 1, arbitrary: badBodies(limits) },
    { weight: 8, arbitrary: txnBodies(limits) },
    { weight: 1, arbitrary: badIds },
    { weight: 2, arbitrary: badClusterBodies },
    { weight: 1, arbitrary: badLastEventId },
  );
  return fc.tuple(any, fc.boolean()).map(([request, msgpack]) => (msgpack ? { ...request, headers: { ...request.headers, accept: 'application/msgpack' } } : request));
}

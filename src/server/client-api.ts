import { Readable } from 'node:stream';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { CairnError, InvalidArgumentError, KeyNotFoundError, TooLargeError, UnavailableError } from '../errors.js';
import type { Backend, Compare, CompareOp, CompareTarget, KeyValue, ResponseHeader, TxnOp, TxnOpResponse } from './backend.js';
import { serveWatch } from './sse.js';
import { bodyBytes, decodeBody, decodePathBytes, encodeBody, onlyParams, queryBool, queryInt, wireKv, type Format } from './wire.js';

export interface ClientApiOptions {
  readonly backend: Backend;
  /** Largest request body. Default 1572864 (API.md's --max-request-bytes). */
  readonly maxRequestBytes?: number;
  /** Largest key. Default 8192 bytes. */
  readonly maxKeyBytes?: number;
  /** A request without an answer by then gets 504 Timeout (its outcome unknown). Default 10000 ms. */
  readonly requestTimeoutMs?: number;
  /** Where failures are logged (a pino logger); none when absent. */
  readonly loggerInstance?: FastifyBaseLogger;
}

type Query = Record<string, string | string[] | undefined>;

function formatOf(request: FastifyRequest): Format {
  if (request.headers.accept?.includes('application/msgpack')) return { msgpack: true };
  // No query at all on a request the router refused (frameworkErrors).
  const q = (request.query ?? {}) as Query;
  return { msgpack: false, base64: q.encoding === 'base64' };
}

function send(reply: FastifyReply, request: FastifyRequest, body: { header: ResponseHeader } & Record<string, unknown>, status = 200): FastifyReply {
  const format = formatOf(request);
  return reply
    .code(status)
    .header('x-cairn-revision', String(body.header.revision))
    .type(format.msgpack ? 'application/msgpack' : 'application/json')
    .send(encodeBody(body, format));
}

/** Where rewriteKeyUrl keeps the path as the client sent it. */
const ORIGINAL_PATH = Symbol('cairn.originalPath');
type WithOriginalPath = { [ORIGINAL_PATH]?: string };
const KEY_ROUTES = ['/v1/kv/', '/v1/watch/'];

/**
 * Keys are any bytes, percent-encoded, so a key's path need not be valid UTF-8,
 * which the router refuses. Key routes are routed on a placeholder path; the
 * handlers read the key from the original one.
 */
function rewriteKeyUrl(raw: { url?: string } & WithOriginalPath): string {
  const url = raw.url ?? '/';
  const route = KEY_ROUTES.find((prefix) => url.startsWith(prefix));
  if (!route) return url;
  const q = url.indexOf('?');
  raw[ORIGINAL_PATH] = q < 0 ? url : url.slice(0, q);
  return `${route}key${q < 0 ? '' : url.slice(q)}`;
}

/** The key after `/v1/kv/` or `/v1/watch/`, percent-decoded to bytes, within the size limit. */
function keyFrom(request: FastifyRequest, prefix: string, maxKeyBytes: number, allowEmpty: boolean): Uint8Array {
  const path = ((request.raw as WithOriginalPath)[ORIGINAL_PATH] ?? request.raw.url ?? '').slice(prefix.length).split('?')[0];
  const key = decodePathBytes(path);
  if (key.length > maxKeyBytes) throw new TooLargeError(`key is ${key.length} bytes; the limit is ${maxKeyBytes}`);
  if (key.length === 0 && !allowEmpty) throw new InvalidArgumentError('key must not be empty (use ?prefix=true to address every key)');
  return key;
}

/**
 * The request's deadline: its timeout, or the client going away before the answer,
 * whichever comes first. One controller and one timer, both released when the
 * response is done (AbortSignal.timeout + any cost a few percent of CPU per request).
 */
function deadline(reply: FastifyReply, timeoutMs: number): AbortSignal {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  reply.raw.once('close', () => {
    clearTimeout(timer);
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}

const TARGETS: readonly CompareTarget[] = ['value', 'version', 'createRevision', 'modRevision', 'lease'];
const OPS: readonly CompareOp[] = ['=', '!=', '<', '>'];

/**
 * A plain object (not an array, nor a Date or other extension value a msgpack body can
 * carry) with no fields but `allowed`: a misspelt field must not silently change what a
 * request does (`"sucess"` would otherwise make a transaction that does nothing).
 */
function object(v: unknown, what: string, allowed: readonly string[]): Record<string, unknown> {
  const proto: unknown = typeof v === 'object' && v !== null ? Object.getPrototypeOf(v) : undefined;
  if (proto !== Object.prototype && proto !== null) throw new InvalidArgumentError(`${what} must be an object`);
  for (const name of Object.keys(v as object)) {
    if (!allowed.includes(name)) throw new InvalidArgumentError(`${what} has unknown field ${JSON.stringify(name.slice(0, 64))} (allowed: ${allowed.join(', ')})`);
  }
  return v as Record<string, unknown>;
}

/** An optional boolean field: absent is false; anything but true or false is refused, not read as false. */
function optionalBoolean(v: unknown, what: string): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw new InvalidArgumentError(`${what} must be true or false`);
  return v;
}

/** Whether an object's key and value are base64 (`"encoding":"base64"`); any other encoding is refused. */
function base64Field(o: Record<string, unknown>, what: string): boolean {
  if (o.encoding === undefined) return false;
  if (o.encoding !== 'base64') throw new InvalidArgumentError(`${what}.encoding must be "base64" when given`);
  return true;
}

function nonNegative(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new InvalidArgumentError(`${what} must be a non-negative integer`);
  return v;
}

function parseTxn(body: unknown, maxKeyBytes: number): { compare: Compare[]; success: TxnOp[]; failure: TxnOp[] } {
  const b = object(body, 'txn body', ['compare', 'success', 'failure']);
  const list = (v: unknown, what: string): unknown[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw new InvalidArgumentError(`${what} must be an array`);
    if (v.length > 128) throw new TooLargeError(`${what} has ${v.length} items; the limit is 128`);
    return v;
  };
  const key = (o: Record<string, unknown>, what: string): Uint8Array => {
    const k = bodyBytes(o.key, base64Field(o, what), `${what}.key`);
    if (k.length === 0) throw new InvalidArgumentError(`${what}.key must not be empty`);
    // TooLarge, as for a key in a path: the same limit answers the same way everywhere.
    if (k.length > maxKeyBytes) throw new TooLargeError(`${what}.key is ${k.length} bytes; the limit is ${maxKeyBytes}`);
    return k;
  };
  const compare = list(b.compare, 'compare').map((raw, i): Compare => {
    const c = object(raw, `compare[${i}]`, ['key', 'target', 'op', 'value', 'encoding']);
    if (!TARGETS.includes(c.target as CompareTarget)) throw new InvalidArgumentError(`compare[${i}].target must be one of ${TARGETS.join(', ')}`);
    if (!OPS.includes(c.op as CompareOp)) throw new InvalidArgumentError(`compare[${i}].op must be one of ${OPS.join(' ')}`);
    const target = c.target as CompareTarget;
    const value = target === 'value' ? bodyBytes(c.value, base64Field(c, `compare[${i}]`), `compare[${i}].value`) : nonNegative(c.value, `compare[${i}].value`);
    return { key: key(c, `compare[${i}]`), target, op: c.op as CompareOp, value };
  });
  const ops = (name: string): TxnOp[] =>
    list(b[name], name).map((raw, i): TxnOp => {
      const what = `${name}[${i}]`;
      const o = object(raw, what, ['get', 'put', 'delete']);
      // Exactly one operation per item: {"get":…,"put":…} is ambiguous, not "the first one".
      if (Object.keys(o).length !== 1) throw new InvalidArgumentError(`${what} must be exactly one of {get}, {put} or {delete}`);
      if (o.get !== undefined) {
        const g = object(o.get, `${what}.get`, ['key', 'prefix', 'encoding']);
        return { get: { key: key(g, `${what}.get`), prefix: optionalBoolean(g.prefix, `${what}.get.prefix`) } };
      }
      if (o.put !== undefined) {
        const p = object(o.put, `${what}.put`, ['key', 'value', 'lease', 'encoding']);
        const lease = p.lease === undefined ? undefined : nonNegative(p.lease, `${what}.put.lease`);
        return { put: { key: key(p, `${what}.put`), value: bodyBytes(p.value, base64Field(p, `${what}.put`), `${what}.put.value`), ...(lease ? { lease } : {}) } };
      }
      if (o.delete !== undefined) {
        const d = object(o.delete, `${what}.delete`, ['key', 'prefix', 'encoding']);
        return { delete: { key: key(d, `${what}.delete`), prefix: optionalBoolean(d.prefix, `${what}.delete.prefix`) } };
      }
      throw new InvalidArgumentError(`${what} must be exactly one of {get}, {put} or {delete}`);
    });
  const success = ops('success');
  const failure = ops('failure');
  refuseDuplicateKeys(success, 'success');
  refuseDuplicateKeys(failure, 'failure');
  return { compare, success, failure };
}

/**
 * As etcd: one branch may not write a key twice (two puts, or a put and a delete or
 * prefix delete covering it): which one wins would be a guess. Deletes may overlap.
 */
function refuseDuplicateKeys(ops: readonly TxnOp[], branch: string): void {
  const puts = new Set<string>();
  const keyOf = (k: Uint8Array): string => Buffer.from(k).toString('latin1');
  for (const op of ops) {
    if (!('put' in op)) continue;
    const k = keyOf(op.put.key);
    if (puts.has(k)) throw new InvalidArgumentError(`${branch} writes key ${JSON.stringify(k.slice(0, 64))} twice`);
    puts.add(k);
  }
  for (const op of ops) {
    if (!('delete' in op)) continue;
    const key = keyOf(op.delete.key);
    const clash = [...puts].find((k) => (op.delete.prefix === true ? k.startsWith(key) : k === key));
    if (clash !== undefined) throw new InvalidArgumentError(`${branch} writes key ${JSON.stringify(clash.slice(0, 64))} twice (a put and a delete)`);
  }
}

function wireTxnResponse(r: TxnOpResponse, format: Format): unknown {
  if ('get' in r) return { get: { kvs: r.get.kvs.map((kv) => wireKv(kv, format)), count: r.get.count } };
  if ('put' in r) return { put: r.put.prevKv ? { prevKv: wireKv(r.put.prevKv, format) } : {} };
  return r;
}

function idParam(request: FastifyRequest, name: string): string {
  const v = (request.params as Record<string, string>)[name];
  if (!/^[0-9a-f]{16}$/.test(v)) throw new InvalidArgumentError(`${name} must be 16 hex digits`);
  return v;
}

function leaseParam(request: FastifyRequest): number {
  const v = (request.params as Record<string, string>).id;
  if (!/^\d{1,15}$/.test(v) || Number(v) === 0) throw new InvalidArgumentError('lease id must be a positive integer');
  return Number(v);
}

/** An operating error as API.md's `{"error":{"code","message",…}}`, in the format the request asked for. */
function replyWithError(request: FastifyRequest, reply: FastifyReply, error: CairnError): FastifyReply {
  const format = formatOf(request);
  const details = { ...error.details };
  if (details.kv) details.kv = wireKv(details.kv as KeyValue, format);
  return reply.code(error.status).type(format.msgpack ? 'application/msgpack' : 'application/json').send(encodeBody({ error: { code: error.code, message: error.message, ...details } }, format));
}

/** The path as the client sent it (key routes are routed on a placeholder), cut short for a message. */
function shownPath(request: FastifyRequest): string {
  const path = (request.raw as WithOriginalPath)[ORIGINAL_PATH] ?? (request.raw.url ?? '').split('?')[0];
  return path.length > 200 ? `${path.slice(0, 200)}…` : path;
}

/** The client API of API.md on a fastify instance (JSON by default, msgpack on request). */
export function buildClientApp(options: ClientApiOptions): FastifyInstance {
  const backend = options.backend;
  const maxKeyBytes = options.maxKeyBytes ?? 8192;
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  const app = Fastify({
    ...(options.loggerInstance ? { loggerInstance: options.loggerInstance } : { logger: false }),
    bodyLimit: options.maxRequestBytes ?? 1572864,
    routerOptions: { maxParamLength: 65536 },
    rewriteUrl: (req) => rewriteKeyUrl(req as typeof req & WithOriginalPath),
    // Errors the router raises before any route runs (a malformed escape or an over-long
    // parameter in /v1/leases/:id or /v1/members/:id): answered in API.md's shape, not fastify's.
    frameworkErrors: (err, request, reply) => replyWithError(request, reply, new InvalidArgumentError(`malformed path ${shownPath(request)}: ${err.message}`)),
    // While closing, fastify would answer 503 with a body of its own; the hook below answers in API.md's shape.
    return503OnClosing: false,
  });
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (request, reply) => {
    if (!closing) return;
    reply.header('connection', 'close');
    return replyWithError(request, reply, new UnavailableError('this member is shutting down; nothing was done, try another member'));
  });
  // Every body arrives as raw bytes: a PUT's body is the value, whatever its type; JSON routes parse it themselves.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, request, reply) => {
    let error: CairnError;
    if (err instanceof CairnError) error = err;
    else if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') error = new TooLargeError(`request body is larger than ${options.maxRequestBytes ?? 1572864} bytes`);
    else if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') error = new InvalidArgumentError(`content-type ${JSON.stringify(String(request.headers['content-type']).slice(0, 64))} is not a media type (type/subtype)`);
    else if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) error = new InvalidArgumentError(err.message);
    else {
      request.log.error({ err }, 'request failed');
      return reply.code(500).send({ error: { code: 'Internal', message: 'internal error' } });
    }
    return replyWithError(request, reply, error);
  });
  // An unknown path or method is a request this API cannot take: 400 InvalidArgument with API.md's
  // body. Not 404, which API.md gives to KeyNotFound: a client must never read a wrong URL as a missing key.
  app.setNotFoundHandler((request, reply) =>
    replyWithError(request, reply, new InvalidArgumentError(`no such route: ${request.method} ${shownPath(request)} (see the API: /v1/kv/{key}, /v1/txn, /v1/watch/{key}, ...)`)),
  );

  const kvPath = '/v1/kv/';
  app.get('/v1/kv/*', async (request, reply) => {
    const q = request.query as Query;
    onlyParams(q, ['prefix', 'revision', 'limit', 'keysOnly', 'countOnly', 'serializable', 'encoding']);
    const prefix = queryBool(q, 'prefix');
    const key = keyFrom(request, kvPath, maxKeyBytes, prefix);
    const r = await backend.range(
      { key, prefix, revision: queryInt(q, 'revision'), limit: queryInt(q, 'limit'), keysOnly: queryBool(q, 'keysOnly'), countOnly: queryBool(q, 'countOnly'), serializable: queryBool(q, 'serializable') },
      deadline(reply, timeoutMs),
    );
    const format = formatOf(request);
    if (!prefix) {
      if (r.kvs.length === 0 && !queryBool(q, 'countOnly')) throw new KeyNotFoundError(`key not found`);
      if (!queryBool(q, 'countOnly')) return send(reply, request, { header: r.header, kv: wireKv(r.kvs[0], format) });
    }
    return send(reply, request, { header: r.header, kvs: r.kvs.map((kv) => wireKv(kv, format)), count: r.count, more: r.more });
  });

  app.put('/v1/kv/*', async (request, reply) => {
    const q = request.query as Query;
    onlyParams(q, ['lease', 'prevKv', 'ifVersion', 'ifModRevision', 'encoding']);
    const key = keyFrom(request, kvPath, maxKeyBytes, false);
    const body = request.body instanceof Buffer ? request.body : Buffer.alloc(0);
    const lease = queryInt(q, 'lease');
    const r = await backend.put(
      { key, value: Uint8Array.from(body), ...(lease ? { lease } : {}), prevKv: queryBool(q, 'prevKv'), ifVersion: queryInt(q, 'ifVersion'), ifModRevision: queryInt(q, 'ifModRevision') },
      deadline(reply, timeoutMs),
    );
    return send(reply, request, { header: r.header, ...(r.prevKv ? { prevKv: wireKv(r.prevKv, formatOf(request)) } : {}) });
  });

  app.delete('/v1/kv/*', async (request, reply) => {
    const q = request.query as Query;
    onlyParams(q, ['prefix', 'prevKv', 'ifModRevision', 'encoding']);
    const prefix = queryBool(q, 'prefix');
    const key = keyFrom(request, kvPath, maxKeyBytes, prefix);
    const r = await backend.delete({ key, prefix, prevKv: queryBool(q, 'prevKv'), ifModRevision: queryInt(q, 'ifModRevision') }, deadline(reply, timeoutMs));
    const format = formatOf(request);
    return send(reply, request, { header: r.header, deleted: r.deleted, ...(r.prevKvs ? { prevKvs: r.prevKvs.map((kv) => wireKv(kv, format)) } : {}) });
  });

  app.post('/v1/txn', async (request, reply) => {
    onlyParams(request.query as Query, ['encoding']);
    const txn = parseTxn(decodeBody(request.body as Buffer, request.headers['content-type']), maxKeyBytes);
    const r = await backend.txn(txn, deadline(reply, timeoutMs));
    const format = formatOf(request);
    return send(reply, request, { header: r.header, succeeded: r.succeeded, responses: r.responses.map((x) => wireTxnResponse(x, format)) });
  });

  app.get('/v1/watch/*', async (request, reply) => {
    const q = request.query as Query;
    onlyParams(q, ['prefix', 'startRevision', 'prevKv', 'encoding']);
    const prefix = queryBool(q, 'prefix');
    const key = keyFrom(request, '/v1/watch/', maxKeyBytes, prefix);
    const lastEventId = request.headers['last-event-id'];
    let startRevision = queryInt(q, 'startRevision');
    if (lastEventId !== undefined) {
      if (typeof lastEventId !== 'string' || !/^\d{1,15}$/.test(lastEventId)) throw new InvalidArgumentError('Last-Event-ID must be a revision');
      startRevision = Number(lastEventId) + 1;
    }
    await serveWatch(request, reply, backend, { key, prefix, startRevision, prevKv: queryBool(q, 'prevKv') }, formatOf(request));
  });

  registerClusterRoutes(app, backend, timeoutMs);
  return app;
}

function registerClusterRoutes(app: FastifyInstance, backend: Backend, timeoutMs: number): void {
  const body = (request: FastifyRequest, allowed: readonly string[]): Record<string, unknown> =>
    object(decodeBody((request.body as Buffer | undefined) ?? Buffer.alloc(0), request.headers['content-type']), 'body', allowed);
  app.post('/v1/compact', async (request, reply) => {
    const revision = nonNegative(body(request, ['revision']).revision, 'revision');
    return send(reply, request, await backend.compact(revision, deadline(reply, timeoutMs)));
  });
  app.post('/v1/leases', async (request, reply) => {
    const ttl = nonNegative(body(request, ['ttl']).ttl, 'ttl');
    return send(reply, request, { ...(await backend.leaseGrant(ttl, deadline(reply, timeoutMs))) });
  });
  app.post('/v1/leases/:id/keepalive', async (request, reply) => send(reply, request, { ...(await backend.leaseKeepAlive(leaseParam(request), deadline(reply, timeoutMs))) }));
  app.get('/v1/leases/:id', async (request, reply) => {
    const info = await backend.leaseInfo(leaseParam(request), deadline(reply, timeoutMs));
    return send(reply, request, { ...info, keys: info.keys.map((k) => Buffer.from(k).toString('utf8')) });
  });
  app.delete('/v1/leases/:id', async (request, reply) => send(reply, request, { ...(await backend.leaseRevoke(leaseParam(request), deadline(reply, timeoutMs))) }));
  app.get('/v1/leases', async (request, reply) => send(reply, request, { ...(await backend.leases(deadline(reply, timeoutMs))) }));
  app.get('/v1/status', async (request, reply) => send(reply, request, { ...(await backend.status(deadline(reply, timeoutMs))) }));
  app.get('/v1/hash', async (request, reply) => {
    const q = request.query as Query;
    onlyParams(q, ['revision']);
    return send(reply, request, { ...(await backend.hashKv(queryInt(q, 'revision') ?? 0, deadline(reply, timeoutMs))) });
  });
  app.get('/v1/members', async (request, reply) => send(reply, request, { ...(await backend.members(deadline(reply, timeoutMs))) }));
  app.post('/v1/members', async (request, reply) => {
    const b = body(request, ['peerUrls', 'learner']);
    const learner = optionalBoolean(b.learner, 'learner');
    if (!Array.isArray(b.peerUrls) || !b.peerUrls.every((u) => typeof u === 'string' && /^https?:\/\/[^/]+:\d+\/?$/.test(u))) {
      throw new InvalidArgumentError('peerUrls must be a list of http(s)://host:port URLs');
    }
    return send(reply, request, { ...(await backend.addMember(b.peerUrls as string[], learner, deadline(reply, timeoutMs))) });
  });
  app.delete('/v1/members/:id', async (request, reply) => send(reply, request, { ...(await backend.removeMember(idParam(request, 'id'), deadline(reply, timeoutMs))) }));
  app.post('/v1/members/:id/promote', async (request, reply) => send(reply, request, { ...(await backend.promoteMember(idParam(request, 'id'), deadline(reply, timeoutMs))) }));
  app.post('/v1/leader/transfer', async (request, reply) => {
    const target = body(request, ['targetId']).targetId;
    if (typeof target !== 'string' || !/^[0-9a-f]{16}$/.test(target)) throw new InvalidArgumentError('targetId must be 16 hex digits');
    return send(reply, request, { ...(await backend.transferLeader(target, deadline(reply, timeoutMs))) });
  });
  app.get('/v1/snapshot', async (request, reply) => {
    reply.type('application/octet-stream').header('content-disposition', 'attachment; filename="cairn.snapshot"');
    return reply.send(Readable.from(backend.snapshot(deadline(reply, 10 * 60_000))));
  });
  app.get('/livez', async (_request, reply) => reply.send({ ok: backend.live() }));
  app.get('/readyz', async (_request, reply) => {
    const r = backend.ready();
    return reply.code(r.ok ? 200 : 503).send(r.ok ? { ok: true } : { ok: false, reason: r.reason });
  });
  app.get('/metrics', async (_request, reply) => reply.type('text/plain; version=0.0.4').send(await backend.metrics()));
}

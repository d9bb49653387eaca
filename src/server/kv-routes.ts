// API.md "Key-value": GET, PUT and DELETE on /v1/kv/{key}, and POST /v1/txn.
// Every request is checked in full before the backend sees it.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { InvalidArgumentError, KeyNotFoundError, TooLargeError } from '../errors.js';
import type { DeleteRequest, PutRequest, RangeRequest, TxnOpResponse } from './backend.js';
import type { RouteContext } from './client-options.js';
import { callWithDeadline } from './deadline.js';
import { decodeRequestBody, wireKv, type ResponseFormat } from './encoding.js';
import { describeKey, KV_PATH, requestKey } from './key-path.js';
import { onlyParams, queryBase64, queryCount, queryFlag, type Query } from './query.js';
import { formatOf, sendResult } from './replies.js';
import { parseTxnBody } from './txn-body.js';

const RANGE_PARAMS = ['prefix', 'revision', 'limit', 'keysOnly', 'countOnly', 'serializable', 'encoding'];
const PUT_PARAMS = ['lease', 'prevKv', 'ifVersion', 'ifModRevision', 'encoding'];
const DELETE_PARAMS = ['prefix', 'prevKv', 'ifModRevision', 'encoding'];

function queryOf(request: FastifyRequest, allowed: readonly string[]): Query {
  const query = request.query as Query;
  onlyParams(query, allowed);
  queryBase64(query);
  return query;
}

function rangeRequest(request: FastifyRequest, context: RouteContext): RangeRequest {
  const q = queryOf(request, RANGE_PARAMS);
  const prefix = queryFlag(q, 'prefix');
  return {
    key: requestKey(request, KV_PATH, { maxKeyBytes: context.limits.maxKeyBytes, allowEmpty: prefix }),
    prefix,
    revision: queryCount(q, 'revision'),
    limit: queryCount(q, 'limit'),
    keysOnly: queryFlag(q, 'keysOnly'),
    countOnly: queryFlag(q, 'countOnly'),
    serializable: queryFlag(q, 'serializable'),
  };
}

function putRequest(request: FastifyRequest, context: RouteContext): PutRequest {
  const q = queryOf(request, PUT_PARAMS);
  const key = requestKey(request, KV_PATH, { maxKeyBytes: context.limits.maxKeyBytes, allowEmpty: false });
  // The body is the value whatever its content type (the routes parse every body as raw bytes).
  const body = request.body instanceof Uint8Array ? request.body : new Uint8Array(0);
  if (body.length > context.limits.maxValueBytes) throw new TooLargeError(`the value is ${body.length} bytes; the limit is ${context.limits.maxValueBytes}`);
  const lease = queryCount(q, 'lease') ?? 0;
  const ifVersion = queryCount(q, 'ifVersion');
  const ifModRevision = queryCount(q, 'ifModRevision');
  return {
    key,
    value: new Uint8Array(body.buffer, body.byteOffset, body.byteLength),
    prevKv: queryFlag(q, 'prevKv'),
    ...(lease > 0 ? { lease } : {}),
    ...(ifVersion !== undefined ? { ifVersion } : {}),
    ...(ifModRevision !== undefined ? { ifModRevision } : {}),
  };
}

function deleteRequest(request: FastifyRequest, context: RouteContext): DeleteRequest {
  const q = queryOf(request, DELETE_PARAMS);
  const prefix = queryFlag(q, 'prefix');
  const ifModRevision = queryCount(q, 'ifModRevision');
  if (prefix && ifModRevision !== undefined) throw new InvalidArgumentError('ifModRevision is a condition on one key; it cannot go with prefix=true (use a txn)');
  // `DELETE /v1/kv/?prefix=true` deletes every key, as etcd's `del "" --prefix` does.
  const key = requestKey(request, KV_PATH, { maxKeyBytes: context.limits.maxKeyBytes, allowEmpty: prefix });
  return { key, prefix, prevKv: queryFlag(q, 'prevKv'), ...(ifModRevision !== undefined ? { ifModRevision } : {}) };
}

function wireTxnOpResponse(response: TxnOpResponse, format: ResponseFormat): unknown {
  if ('get' in response) return { get: { kvs: response.get.kvs.map((kv) => wireKv(kv, format)), count: response.get.count } };
  if ('put' in response) return { put: response.put.prevKv ? { prevKv: wireKv(response.put.prevKv, format) } : {} };
  return { delete: { deleted: response.delete.deleted } };
}

export function registerKvRoutes(app: FastifyInstance, context: RouteContext): void {
  const { backend, limits } = context;
  const bodyLimit = limits.maxRequestBytes;

  app.get('/v1/kv/*', async (request, reply) => {
    const range = rangeRequest(request, context);
    const r = await callWithDeadline(reply, limits.requestTimeoutMs, (signal) => backend.range(range, signal));
    const format = formatOf(request);
    // One key (without countOnly, which answers a count even for a missing key): {header, kv} or 404.
    if (!range.prefix && !range.countOnly) {
      if (r.kvs.length === 0) throw new KeyNotFoundError(`key ${describeKey(range.key)} not found`);
      return sendResult(request, reply, { header: r.header, kv: wireKv(r.kvs[0], format) });
    }
    return sendResult(request, reply, { header: r.header, kvs: r.kvs.map((kv) => wireKv(kv, format)), count: r.count, more: r.more });
  });

  app.put('/v1/kv/*', { bodyLimit }, async (request, reply) => {
    const put = putRequest(request, context);
    const r = await callWithDeadline(reply, limits.requestTimeoutMs, (signal) => backend.put(put, signal));
    return sendResult(request, reply, { header: r.header, ...(r.prevKv ? { prevKv: wireKv(r.prevKv, formatOf(request)) } : {}) });
  });

  app.delete('/v1/kv/*', { bodyLimit }, async (request, reply) => {
    const del = deleteRequest(request, context);
    const r = await callWithDeadline(reply, limits.requestTimeoutMs, (signal) => backend.delete(del, signal));
    const format = formatOf(request);
    return sendResult(request, reply, { header: r.header, deleted: r.deleted, ...(r.prevKvs ? { prevKvs: r.prevKvs.map((kv) => wireKv(kv, format)) } : {}) });
  });

  app.post('/v1/txn', { bodyLimit }, async (request, reply) => {
    queryOf(request, ['encoding']);
    const raw = request.body instanceof Uint8Array ? request.body : undefined;
    const txn = parseTxnBody(decodeRequestBody(raw, request.headers['content-type']), limits);
    const r = await callWithDeadline(reply, limits.requestTimeoutMs, (signal) => backend.txn(txn, signal));
    const format = formatOf(request);
    return sendResult(request, reply, { header: r.header, succeeded: r.succeeded, responses: r.responses.map((x) => wireTxnOpResponse(x, format)) });
  });
}

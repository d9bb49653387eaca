// API.md "Cluster and maintenance": status, membership, leadership, compaction,
// snapshots, and the health and metrics endpoints.

import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { InvalidArgumentError, UnavailableError } from '../errors.js';
import { bodyObject, flagField, integerField, listField } from './body-fields.js';
import type { RouteContext } from './client-options.js';
import { callWithDeadline } from './deadline.js';
import { encodeResponse } from './encoding.js';
import { onlyParams, type Query } from './query.js';
import { errorBody, formatOf, sendResult } from './replies.js';

/** Most peer URLs a member may have. */
const MAX_PEER_URLS = 16;
const MEMBER_ID = /^[0-9a-fA-F]{16}$/;

function noParams(request: FastifyRequest): void {
  onlyParams(request.query as Query, []);
}

/** A member id (16 hex digits), lowercased. */
function memberId(value: unknown, what: string): string {
  if (typeof value !== 'string' || !MEMBER_ID.test(value)) throw new InvalidArgumentError(`${what} must be 16 hex digits (got ${JSON.stringify(value) ?? typeof value})`);
  return value.toLowerCase();
}

/** An http(s)://host:port peer URL, with nothing after the authority. */
function peerUrl(value: unknown, what: string): string {
  let url: URL | undefined;
  try {
    url = typeof value === 'string' && value.length <= 2048 ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  const plain = url !== undefined && (url.protocol === 'http:' || url.protocol === 'https:') && url.port !== '' && url.pathname === '/' && !url.search && !url.hash && !url.username;
  if (!plain) throw new InvalidArgumentError(`${what} must be an http(s)://host:port URL (got ${JSON.stringify(value) ?? typeof value})`);
  return value as string;
}

export function registerClusterRoutes(app: FastifyInstance, context: RouteContext): void {
  const { backend, limits } = context;
  const bodyLimit = limits.maxRequestBytes;
  const timeoutMs = limits.requestTimeoutMs;

  app.get('/v1/status', async (request, reply) => {
    noParams(request);
    return sendResult(request, reply, { ...(await callWithDeadline(reply, timeoutMs, (signal) => backend.status(signal))) });
  });

  app.get('/v1/members', async (request, reply) => {
    noParams(request);
    const r = await callWithDeadline(reply, timeoutMs, (signal) => backend.members(signal));
    return sendResult(request, reply, { header: r.header, members: r.members });
  });

  app.post('/v1/members', { bodyLimit }, async (request, reply) => {
    noParams(request);
    const body = bodyObject(request, ['peerUrls', 'learner']);
    const peerUrls = listField(body.peerUrls, 'peerUrls', MAX_PEER_URLS).map((url, i) => peerUrl(url, `peerUrls[${i}]`));
    if (peerUrls.length === 0) throw new InvalidArgumentError('peerUrls must name at least one URL');
    const learner = flagField(body.learner, 'learner');
    const r = await callWithDeadline(reply, timeoutMs, (signal) => backend.addMember(peerUrls, learner, signal));
    return sendResult(request, reply, { header: r.header, member: r.member, members: r.members });
  });

  app.delete('/v1/members/:id', { bodyLimit }, async (request, reply) => {
    noParams(request);
    const id = memberId((request.params as Record<string, string>).id, 'the member id');
    const r = await callWithDeadline(reply, timeoutMs, (signal) => backend.removeMember(id, signal));
    return sendResult(request, reply, { header: r.header, members: r.members });
  });

  app.post('/v1/members/:id/promote', { bodyLimit }, async (request, reply) => {
    noParams(request);
    const id = memberId((request.params as Record<string, string>).id, 'the member id');
    const r = await callWithDeadline(reply, timeoutMs, (signal) => backend.promoteMember(id, signal));
    return sendResult(request, reply, { header: r.header, members: r.members });
  });

  app.post('/v1/leader/transfer', { bodyLimit }, async (request, reply) => {
    noParams(request);
    const targetId = memberId(bodyObject(request, ['targetId']).targetId, 'targetId');
    const r = await callWithDeadline(reply, timeoutMs, (signal) => backend.transferLeader(targetId, signal));
    return sendResult(request, reply, { header: r.header });
  });

  app.post('/v1/compact', { bodyLimit }, async (request, reply) => {
    noParams(request);
    const revision = integerField(bodyObject(request, ['revision']).revision, 'revision', 1);
    const r = await callWithDeadline(reply, timeoutMs, (signal) => backend.compact(revision, signal));
    return sendResult(request, reply, { header: r.header });
  });

  registerSnapshotRoute(app, context);
  registerHealthRoutes(app, context);
}

/**
 * GET /v1/snapshot: the backup as one octet stream. The first chunk is awaited
 * under the request deadline, so a member that cannot start one answers with an
 * error status; after that the stream runs until done or the client goes.
 */
function registerSnapshotRoute(app: FastifyInstance, context: RouteContext): void {
  app.get('/v1/snapshot', { exposeHeadRoute: false }, async (request, reply) => {
    noParams(request);
    // Ends the backend's stream when the response is done or the client goes.
    const controller = new AbortController();
    reply.raw.once('close', () => controller.abort());
    const chunks = context.backend.snapshot(controller.signal)[Symbol.asyncIterator]();
    let first: IteratorResult<Uint8Array>;
    try {
      first = await callWithDeadline(reply, context.limits.requestTimeoutMs, () => chunks.next());
    } catch (err) {
      controller.abort();
      throw err;
    }
    async function* all(): AsyncGenerator<Uint8Array> {
      try {
        for (let next = first; !next.done; next = await chunks.next()) yield next.value;
      } finally {
        controller.abort();
        await chunks.return?.();
      }
    }
    return reply
      .type('application/octet-stream')
      .header('content-disposition', 'attachment; filename="cairn.snapshot"')
      .send(Readable.from(all(), { objectMode: false }));
  });
}

function registerHealthRoutes(app: FastifyInstance, context: RouteContext): void {
  const { backend } = context;
  app.get('/livez', async (request, reply) => {
    noParams(request);
    if (backend.live()) return reply.type('application/json; charset=utf-8').send('{"ok":true}');
    return unavailable(request, reply, 'not live');
  });
  app.get('/readyz', async (request, reply) => {
    noParams(request);
    const ready = backend.ready();
    if (ready.ok) return reply.type('application/json; charset=utf-8').send('{"ok":true}');
    return unavailable(request, reply, ready.reason);
  });
  app.get('/metrics', async (request, reply) => {
    noParams(request);
    return reply.type('text/plain; version=0.0.4; charset=utf-8').send(await backend.metrics());
  });
}

/** 503 with both the probe's `{ok:false, reason}` and the API's error body. */
function unavailable(request: FastifyRequest, reply: FastifyReply, reason: string): FastifyReply {
  const format = formatOf(request);
  const { payload, contentType } = encodeResponse({ ok: false, reason, ...errorBody(new UnavailableError(reason), format) }, format);
  return reply.code(503).type(contentType).send(payload);
}

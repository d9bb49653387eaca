// API.md "Leases": grant, keep alive, look up, revoke, list.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { bodyObject, integerField } from './body-fields.js';
import type { RouteContext } from './client-options.js';
import { callWithDeadline } from './deadline.js';
import { wireKeys } from './encoding.js';
import { onlyParams, parseCount, queryBase64, type Query } from './query.js';
import { formatOf, sendResult } from './replies.js';
import { InvalidArgumentError } from '../errors.js';

/** The longest lease there is, in seconds (etcd's MaxLeaseTTL, about 285 years). */
export const MAX_LEASE_TTL_SECONDS = 9_000_000_000;

/** The `:id` of a lease route: a positive decimal integer. */
function leaseIdParam(request: FastifyRequest): number {
  const id = parseCount((request.params as Record<string, string>).id, 'the lease id');
  if (id === 0) throw new InvalidArgumentError('the lease id must be positive');
  return id;
}

function noParams(request: FastifyRequest, allowed: readonly string[] = []): void {
  const query = request.query as Query;
  onlyParams(query, allowed);
  queryBase64(query);
}

export function registerLeaseRoutes(app: FastifyInstance, context: RouteContext): void {
  const { backend, limits } = context;
  const bodyLimit = limits.maxRequestBytes;
  const timeoutMs = limits.requestTimeoutMs;

  app.post('/v1/leases', { bodyLimit }, async (request, reply) => {
    noParams(request);
    const ttl = integerField(bodyObject(request, ['ttl']).ttl, 'ttl', 1, MAX_LEASE_TTL_SECONDS);
    const r = await callWithDeadline(reply, timeoutMs, (signal) => backend.leaseGrant(ttl, signal));
    return sendResult(request, reply, { header: r.header, id: r.id, ttl: r.ttl });
  });

  app.post('/v1/leases/:id/keepalive', { bodyLimit }, async (request, reply) => {
    noParams(request);
    const id = leaseIdParam(request);
    const r = await callWithDeadline(reply, timeoutMs, (signal) => backend.leaseKeepAlive(id, signal));
    return sendResult(request, reply, { header: r.header, id, ttl: r.ttl });
  });

  app.get('/v1/leases/:id', async (request, reply) => {
    noParams(request, ['encoding']);
    const id = leaseIdParam(request);
    const r = await callWithDeadline(reply, timeoutMs, (signal) => backend.leaseInfo(id, signal));
    return sendResult(request, reply, { header: r.header, id: r.id, ttl: r.ttl, grantedTtl: r.grantedTtl, ...wireKeys(r.keys, formatOf(request)) });
  });

  app.delete('/v1/leases/:id', { bodyLimit }, async (request, reply) => {
    noParams(request);
    const id = leaseIdParam(request);
    const r = await callWithDeadline(reply, timeoutMs, (signal) => backend.leaseRevoke(id, signal));
    return sendResult(request, reply, { header: r.header });
  });

  app.get('/v1/leases', async (request, reply) => {
    noParams(request);
    const r = await callWithDeadline(reply, timeoutMs, (signal) => backend.leases(signal));
    return sendResult(request, reply, { header: r.header, leases: r.leases.map((lease) => ({ id: lease.id })) });
  });
}

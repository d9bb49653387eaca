// The client API of API.md as a fastify plugin: key-value, watch, leases,
// cluster and maintenance, health and metrics, all on one Backend.
//
// The plugin is encapsulated (not wrapped in fastify-plugin): its content-type
// parsers and error handler apply to its own routes only. Register it at the
// root (key routes read the path from /v1/kv/ and /v1/watch/), with
// `rewriteUrl: (req) => rewriteKeyUrl(req.url)` on the instance so keys that
// are not UTF-8 (`%FF`) get past the router; buildClientApp (app.ts) does both.

import type { FastifyPluginAsync } from 'fastify';
import { registerClusterRoutes } from './cluster-routes.js';
import { resolveLimits, type ClientRoutesOptions, type RouteContext } from './client-options.js';
import { registerKvRoutes } from './kv-routes.js';
import { registerLeaseRoutes } from './lease-routes.js';
import { sendError } from './replies.js';
import { registerWatchRoute } from './watch-sse.js';

export type { ClientRoutesOptions } from './client-options.js';

export const clientRoutes: FastifyPluginAsync<ClientRoutesOptions> = async (app, options) => {
  const context: RouteContext = { backend: options.backend, limits: resolveLimits(options) };
  // Every body arrives as raw bytes: a PUT's body is the value whatever its
  // type (JSON and msgpack included); the structured routes decode theirs.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: context.limits.maxRequestBytes }, (_request, body, done) => done(null, body));
  app.setErrorHandler((error, request, reply) => sendError(request, reply, error));
  registerKvRoutes(app, context);
  registerWatchRoute(app, context);
  registerLeaseRoutes(app, context);
  registerClusterRoutes(app, context);
};

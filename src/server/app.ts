// The client API's fastify instance: the clientRoutes plugin with the instance
// options it needs (body limit, key paths past the router, a 404 in the API's
// error shape). The caller listens on it or uses inject().

import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { InvalidArgumentError } from '../errors.js';
import { DEFAULT_LIMITS, type ClientRoutesOptions } from './client-options.js';
import { clientRoutes } from './client-routes.js';
import { rewriteKeyUrl } from './key-path.js';
import { sendError } from './replies.js';

export interface ClientAppOptions extends ClientRoutesOptions {
  /** fastify's `logger` option, passed through. Default false (no logging). Ignored with loggerInstance. */
  readonly logger?: FastifyServerOptions['logger'];
  /** A logger to use (a pino instance); wins over `logger`. */
  readonly loggerInstance?: FastifyBaseLogger;
}

/** The client API of API.md on a new fastify instance (JSON by default, msgpack on request). */
export function buildClientApp(options: ClientAppOptions): FastifyInstance {
  const { logger, loggerInstance, ...routeOptions } = options;
  const app = Fastify({
    ...(loggerInstance ? { loggerInstance } : { logger: logger ?? false }),
    bodyLimit: options.maxRequestBytes ?? DEFAULT_LIMITS.maxRequestBytes,
    rewriteUrl: (request) => rewriteKeyUrl(request.url ?? '/'),
    // The router's own refusals (a path that is not valid UTF-8 outside key routes, a parameter too long) in the API's error shape.
    frameworkErrors: (error, request, reply) => sendError(request, reply, error),
  });
  // Errors outside the plugin's routes (a bad body to an unknown route...) in the API's shape too.
  app.setErrorHandler((error, request, reply) => sendError(request, reply, error));
  // An unknown route (or method) is a malformed request, not a missing key: a
  // 404 KeyNotFound would tell a client that asked for a key it does not exist.
  app.setNotFoundHandler((request, reply) => sendError(request, reply, new InvalidArgumentError(`no route ${request.method} ${request.originalUrl.split('?')[0]}`)));
  void app.register(clientRoutes, routeOptions);
  return app;
}

// How answers are written: a success body with its `header` and the
// X-Cairn-Revision HTTP header; an error as its status and
// {"error":{"code","message",...details}}, in the format the request asked for.

import type { FastifyReply, FastifyRequest } from 'fastify';
import { CairnError, InvalidArgumentError, TooLargeError } from '../errors.js';
import type { KeyValue, ResponseHeader } from './backend.js';
import { ClientGoneError } from './deadline.js';
import { encodeResponse, responseFormat, wireKv, type ResponseFormat } from './encoding.js';
import type { Query } from './query.js';

export const REVISION_HEADER = 'x-cairn-revision';

/** The response format of a request: msgpack on `Accept: application/msgpack`, else JSON (base64 with `?encoding=base64`). */
export function formatOf(request: FastifyRequest): ResponseFormat {
  return responseFormat(request.headers.accept, (request.query as Query | undefined)?.encoding === 'base64');
}

/** A success: 200, the body in the request's format, X-Cairn-Revision from its header. */
export function sendResult(request: FastifyRequest, reply: FastifyReply, body: { readonly header: ResponseHeader } & Record<string, unknown>): FastifyReply {
  const { payload, contentType } = encodeResponse(body, formatOf(request));
  return reply.code(200).header(REVISION_HEADER, String(body.header.revision)).type(contentType).send(payload);
}

/** An error body: `{"error":{"code","message",...details}}` (a CompareFailed `kv` encoded like any key-value). */
export function errorBody(error: CairnError, format: ResponseFormat): { error: Record<string, unknown> } {
  const details: Record<string, unknown> = { ...error.details };
  if (details.kv !== undefined) details.kv = wireKv(details.kv as KeyValue, format);
  return { error: { code: error.code, message: error.message, ...details } };
}

/** Errors fastify raises before a handler runs (body too large, bad Content-Length...) as API errors; undefined for anything else. */
function frameworkError(error: Error & { statusCode?: number }): CairnError | undefined {
  if (error.statusCode === 413) return new TooLargeError(error.message);
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) return new InvalidArgumentError(error.message);
  return undefined;
}

/**
 * The error handler of the client routes: operating errors get their status
 * and code; anything else is a bug, logged and answered 500 `Internal`.
 */
export function sendError(request: FastifyRequest, reply: FastifyReply, error: unknown): FastifyReply {
  if (error instanceof ClientGoneError) {
    request.log.debug({ url: request.url }, 'client went away before the answer');
    return reply.code(499).send();
  }
  const apiError = error instanceof CairnError ? error : error instanceof Error ? frameworkError(error) : undefined;
  const format = formatOf(request);
  if (apiError === undefined) {
    request.log.error({ err: error, method: request.method, url: request.originalUrl }, 'request failed');
    const { payload, contentType } = encodeResponse({ error: { code: 'Internal', message: 'internal error (logged by the member)' } }, format);
    return reply.code(500).type(contentType).send(payload);
  }
  const { payload, contentType } = encodeResponse(errorBody(apiError, format), format);
  return reply.code(apiError.status).type(contentType).send(payload);
}

// API.md "Watch": GET /v1/watch/{key} as Server-Sent Events.
//
//   id: <revision>            all events of one revision share it and go in ONE write
//   event: put | delete
//   data: {"kv":{…},"prevKv":{…}}
//
//   event: progress            no id: it is not a place to resume from
//   data: {"revision":R}
//
//   event: compacted           the history asked for is gone; the stream ends
//   data: {"compactRevision":C}
//
//   event: closed              the member ended the watch (shutting down, watcher
//   data: {"reason":"…"}       too slow…); the stream ends and the client resumes
//
//   event: failed              the backend failed the watch after it started;
//   data: {"code","message"}   the stream ends (not `error`: EventSource uses that name)
//
// Resuming: `Last-Event-ID: R` starts at R + 1 and wins over `startRevision`
// (a browser's EventSource reconnects to the same URL, startRevision and all,
// adding the id of the last event it saw). Idle watchers get progress notices
// from the backend (about every 10 s); `?progressNow=true` asks the backend for
// one as soon as the watch starts (backend.requestProgress(), which every
// watch of the member answers), so a client learns at once how current it is.
// Keys and values follow the JSON rules (text, or base64 with "encoding").

import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CairnError, InvalidArgumentError } from '../errors.js';
import type { WatchEvent, WatchNotice, WatchRequest } from './backend.js';
import type { RouteContext } from './client-options.js';
import { wireKv, type ResponseFormat } from './encoding.js';
import { requestKey, WATCH_PATH } from './key-path.js';
import { onlyParams, parseCount, queryBase64, queryCount, queryFlag, type Query } from './query.js';

const WATCH_PARAMS = ['prefix', 'startRevision', 'prevKv', 'encoding', 'progressNow'];

export interface WatchSpec {
  readonly request: WatchRequest;
  readonly format: ResponseFormat;
  readonly progressNow: boolean;
}

/** The watch a request asks for, checked in full (before the stream starts, so a bad one gets a 400). */
export function parseWatchRequest(request: FastifyRequest, maxKeyBytes: number): WatchSpec {
  const q = request.query as Query;
  onlyParams(q, WATCH_PARAMS);
  const prefix = queryFlag(q, 'prefix');
  const key = requestKey(request, WATCH_PATH, { maxKeyBytes, allowEmpty: prefix });
  let startRevision = queryCount(q, 'startRevision');
  const lastEventId = request.headers['last-event-id'];
  if (lastEventId !== undefined) {
    if (typeof lastEventId !== 'string') throw new InvalidArgumentError('Last-Event-ID is given more than once');
    startRevision = parseCount(lastEventId.trim(), 'Last-Event-ID (the last revision seen)') + 1;
  }
  return {
    request: { key, prefix, prevKv: queryFlag(q, 'prevKv'), ...(startRevision ? { startRevision } : {}) },
    format: { msgpack: false, base64: queryBase64(q) },
    progressNow: queryFlag(q, 'progressNow'),
  };
}

function eventsText(revision: number, events: readonly WatchEvent[], format: ResponseFormat): string {
  let text = '';
  for (const event of events) {
    const data = { kv: wireKv(event.kv, format), ...(event.prevKv ? { prevKv: wireKv(event.prevKv, format) } : {}) };
    text += `id: ${revision}\nevent: ${event.type}\ndata: ${JSON.stringify(data)}\n\n`;
  }
  return text;
}

/** A notice as SSE text, and whether the stream ends after it. */
export function noticeText(notice: WatchNotice, format: ResponseFormat): { readonly text: string; readonly last: boolean } {
  switch (notice.kind) {
    case 'events':
      return { text: eventsText(notice.revision, notice.events, format), last: false };
    case 'progress':
      return { text: `event: progress\ndata: ${JSON.stringify({ revision: notice.revision })}\n\n`, last: false };
    case 'compacted':
      return { text: `event: compacted\ndata: ${JSON.stringify({ compactRevision: notice.compactRevision })}\n\n`, last: true };
    case 'closed':
      return { text: `event: closed\ndata: ${JSON.stringify({ reason: notice.reason })}\n\n`, last: true };
  }
}

/** Resolves once the response can take more ('drain'), or the watch is over (signal). */
function drained(response: ServerResponse, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      response.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    if (signal.aborted) return resolve();
    response.once('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** The next notice, or undefined once the signal fires (a backend that keeps us waiting cannot hold the stream open). */
function nextOrAbort(next: Promise<IteratorResult<WatchNotice>>, signal: AbortSignal): Promise<IteratorResult<WatchNotice> | undefined> {
  next.catch(() => undefined);
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    next.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * Streams a watch to the client until the backend ends it, the client goes, or
 * the member closes it. Everything after the headers is written to reply.raw
 * (the reply is hijacked); failures after that end the stream, never throw.
 */
async function streamWatch(request: FastifyRequest, reply: FastifyReply, context: RouteContext, spec: WatchSpec): Promise<void> {
  const controller = new AbortController();
  const signal = controller.signal;
  const response = reply.raw;
  // The response closes when the client goes (or when we end it): either way the watch is over.
  const onClose = (): void => controller.abort();
  response.once('close', onClose);
  let notices: AsyncIterator<WatchNotice>;
  try {
    notices = context.backend.watch(spec.request, signal)[Symbol.asyncIterator]();
  } catch (err) {
    // Refused before it started (too many watchers, shutting down…): an ordinary error answer.
    response.off('close', onClose);
    controller.abort();
    throw err;
  }
  reply.hijack();
  response.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  // Sends the headers now: the client knows the watch is in place before any event.
  response.write(': watching\n\n');
  try {
    let pending = notices.next();
    if (spec.progressNow) context.backend.requestProgress();
    for (;;) {
      const next = await nextOrAbort(pending, signal);
      if (next === undefined || next.done) break;
      const { text, last } = noticeText(next.value, spec.format);
      if (!response.write(text)) await drained(response, signal);
      if (last || signal.aborted) break;
      pending = notices.next();
    }
  } catch (err) {
    if (!signal.aborted) {
      if (!(err instanceof CairnError)) request.log.error({ err, url: request.originalUrl }, 'watch failed');
      const failure = err instanceof CairnError ? { code: err.code, message: err.message } : { code: 'Internal', message: 'internal error (logged by the member)' };
      response.write(`event: failed\ndata: ${JSON.stringify(failure)}\n\n`);
    }
  } finally {
    response.off('close', onClose);
    controller.abort();
    // Not awaited: with a next() still pending, return() waits for it, and the abort above ends it.
    notices.return?.().catch(() => undefined);
    response.end();
  }
}

export function registerWatchRoute(app: FastifyInstance, context: RouteContext): void {
  // No HEAD twin: a HEAD request would hold a watch open with nowhere to send it.
  app.get('/v1/watch/*', { exposeHeadRoute: false }, async (request, reply) => {
    const spec = parseWatchRequest(request, context.limits.maxKeyBytes);
    await streamWatch(request, reply, context, spec);
  });
}

import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Backend, WatchEvent, WatchRequest } from './backend.js';
import { wireKv, type Format } from './wire.js';

/** Waits for the socket to drain, or for the watch to end. */
function drained(reply: FastifyReply, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      reply.raw.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    reply.raw.once('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

function eventText(revision: number, events: readonly WatchEvent[], format: Format): string {
  const json: Format = format.msgpack ? { msgpack: false, base64: false } : format;
  return events
    .map((e) => {
      const data = { kv: wireKv(e.kv, json), ...(e.prevKv ? { prevKv: wireKv(e.prevKv, json) } : {}) };
      return `id: ${revision}\nevent: ${e.type}\ndata: ${JSON.stringify(data)}\n\n`;
    })
    .join('');
}

/**
 * A watch as Server-Sent Events: all events of one revision in one write, with
 * that revision as their id; progress and compacted notices; ends when the client
 * goes or the member closes the watch. Backpressure: waits for 'drain'.
 */
export async function serveWatch(request: FastifyRequest, reply: FastifyReply, backend: Backend, spec: WatchRequest, format: Format): Promise<void> {
  const controller = new AbortController();
  request.raw.once('close', () => controller.abort());
  reply.hijack();
  reply.raw.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  reply.raw.write(': watching\n\n');
  try {
    for await (const notice of backend.watch(spec, controller.signal)) {
      let text: string;
      let last = false;
      switch (notice.kind) {
        case 'events':
          text = eventText(notice.revision, notice.events, format);
          break;
        case 'progress':
          text = `event: progress\ndata: ${JSON.stringify({ revision: notice.revision })}\n\n`;
          break;
        case 'compacted':
          text = `event: compacted\ndata: ${JSON.stringify({ compactRevision: notice.compactRevision })}\n\n`;
          last = true;
          break;
        case 'closed':
          text = `event: closed\ndata: ${JSON.stringify({ reason: notice.reason })}\n\n`;
          last = true;
          break;
      }
      if (!reply.raw.write(text)) await drained(reply, controller.signal);
      if (last || controller.signal.aborted) break;
    }
  } finally {
    controller.abort();
    reply.raw.end();
  }
}

// A watch that survives lost connections and dead members (DESIGN.md promise 3):
// every change delivered, in revision order, exactly once, or a CompactedError.
//
// The stream is SSE; all events of one revision carry that revision as their id
// and the member writes them together. The client yields them as one batch. It
// cannot see where a revision's events end until the next message arrives, so
// when a chunk ends between messages it yields what it has (waiting would delay
// every event) and keeps count: if more events of that revision follow on the
// same connection they are yielded as a second batch of the same revision; if
// the connection is lost first, it resumes from the revision before and skips
// the events already delivered. Nothing is lost, nothing repeated.

import type { Dispatcher } from 'undici';
import { errorFromHttp } from './codec.js';
import { AbortedError, CairnClientError, ClientClosedError, CompactedError, InternalError, TooLargeError } from './errors.js';
import { backoffMs, EndpointRing, pause, type BackoffOptions } from './failover.js';
import { openStream, SendFailure, type Endpoint, type HttpResponse, type StreamResponse } from './http.js';
import { encodeKeyPath } from './key-value.js';
import { decodeWatchEvent } from './responses.js';
import { SseParser, type SseMessage } from './sse.js';
import type { WatchBatch, WatchEvent, WatchOptions } from './types.js';

/**
 * Where a watch stands: the last revision delivered, and whether all of its
 * events were. Decides what a (re)connection asks for and which events are new.
 */
export class WatchCursor {
  #revision: number;
  /** Every event of #revision has been delivered. */
  #complete = true;
  /** Events of #revision delivered so far. */
  #delivered = 0;
  /** Events of #revision the current connection will send again, to skip. */
  #replaySkip = 0;

  /** @param afterRevision the revision before the first one to deliver. */
  constructor(afterRevision: number) {
    this.#revision = afterRevision;
  }

  /** The last revision delivered (or known to have no more events for this watch). */
  get revision(): number {
    return this.#revision;
  }

  /** Starts a connection: the Last-Event-ID to send. */
  reconnect(): number {
    if (this.#complete) {
      this.#replaySkip = 0;
      return this.#revision;
    }
    this.#replaySkip = this.#delivered;
    return this.#revision - 1;
  }

  /** Events of `revision` that arrived on the current connection: returns those not delivered before. */
  accept(revision: number, events: readonly WatchEvent[]): readonly WatchEvent[] {
    if (revision < this.#revision) return [];
    if (revision === this.#revision) {
      if (this.#complete) return [];
      const skip = Math.min(this.#replaySkip, events.length);
      this.#replaySkip -= skip;
      const fresh = events.slice(skip);
      this.#delivered += fresh.length;
      return fresh;
    }
    this.#revision = revision;
    this.#complete = false;
    this.#delivered = events.length;
    this.#replaySkip = 0;
    return events;
  }

  /** A later message arrived after the events of `revision`: they are all in. */
  complete(revision: number): void {
    if (revision === this.#revision) this.#complete = true;
  }

  /** A progress notice: every change up to `revision` is delivered. Returns whether to pass it on (not stale). */
  progress(revision: number): boolean {
    if (revision < this.#revision) return false;
    if (revision > this.#revision) {
      this.#revision = revision;
      this.#delivered = 0;
    }
    this.#complete = true;
    return true;
  }

  /**
   * The resume from the revision before (to finish an incomplete one) hit a
   * compaction that resuming after it would not: accept the revision as
   * complete and resume after it. Returns false when the compaction is real.
   */
  retryAfterCompacted(compactRevision: number): boolean {
    if (this.#complete || compactRevision > this.#revision + 1) return false;
    this.#complete = true;
    return true;
  }
}

export interface WatchContext {
  readonly ring: EndpointRing;
  readonly dispatcher: Dispatcher;
  readonly headers: Readonly<Record<string, string>>;
  /** Deadline for a connection's response headers. */
  readonly timeoutMs: number;
  /** Silence after which a stream counts as lost. */
  readonly idleTimeoutMs: number;
  readonly backoff: BackoffOptions;
  /** The store's revision now, read linearizably (where a watch without startRevision begins). */
  currentRevision(key: Uint8Array, prefix: boolean, signal: AbortSignal): Promise<number>;
}

/** How one connection ended, when it did not throw. */
type StreamEnd =
  /** Lost (broken, closed by the member, refused): resume elsewhere after a backoff. */
  | { readonly kind: 'lost'; readonly progressed: boolean }
  /** Resume at once (see WatchCursor.retryAfterCompacted). */
  | { readonly kind: 'again' }
  | { readonly kind: 'stopped' };

/** Connection failures worth retrying for ever (the watch outlives a cluster restart); others end the watch. */
function retriable(error: unknown): boolean {
  return error instanceof CairnClientError && ['Connection', 'Unavailable', 'Timeout', 'Internal'].includes(error.code);
}

/** The batches of a watch, resuming after every loss until the signal (or the client's close) stops it. */
export async function* watchBatches(context: WatchContext, key: Uint8Array, options: WatchOptions, closed: AbortSignal): AsyncGenerator<WatchBatch, void, undefined> {
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  options.signal?.addEventListener('abort', stop, { once: true });
  closed.addEventListener('abort', stop, { once: true });
  if (options.signal?.aborted || closed.aborted) stop();
  const signal = controller.signal;
  const ring = new EndpointRing(context.ring.endpoints, context.ring.current());
  let cursor = options.startRevision ? new WatchCursor(options.startRevision - 1) : undefined;
  let failures = 0;
  try {
    while (!signal.aborted) {
      if (failures > 0) await pause(backoffMs(failures, context.backoff), signal);
      if (signal.aborted) break;
      if (cursor === undefined) {
        try {
          cursor = new WatchCursor(await context.currentRevision(key, options.prefix === true, signal));
        } catch (error) {
          if (error instanceof AbortedError || error instanceof ClientClosedError) break;
          if (!retriable(error)) throw error;
          failures++;
          continue;
        }
      }
      const endpoint = ring.current();
      const end = yield* followStream(context, endpoint, key, options, cursor, signal);
      if (end.kind === 'stopped') break;
      if (end.kind === 'lost') {
        ring.failed(endpoint);
        failures = end.progressed ? 1 : failures + 1;
      }
    }
  } finally {
    options.signal?.removeEventListener('abort', stop);
    closed.removeEventListener('abort', stop);
    controller.abort();
  }
}

function watchPath(key: Uint8Array, options: WatchOptions): string {
  const query = new URLSearchParams();
  if (options.prefix) query.set('prefix', 'true');
  if (options.prevKv) query.set('prevKv', 'true');
  // Event data is JSON; base64 for every key and value leaves no text-or-bytes question.
  query.set('encoding', 'base64');
  return `/v1/watch/${encodeKeyPath(key)}?${query}`;
}

/** One connection: yields its new batches; returns how it ended; throws what ends the watch. */
async function* followStream(
  context: WatchContext,
  endpoint: Endpoint,
  key: Uint8Array,
  options: WatchOptions,
  cursor: WatchCursor,
  signal: AbortSignal,
): AsyncGenerator<WatchBatch, StreamEnd, undefined> {
  const lastEventId = cursor.reconnect();
  let response: StreamResponse;
  try {
    response = await openStream(
      context.dispatcher,
      endpoint,
      { method: 'GET', path: watchPath(key, options), headers: { ...context.headers, accept: 'text/event-stream', 'last-event-id': String(lastEventId) } },
      // No undici body timeout: readEvents keeps its own, paused while the consumer holds a batch.
      { headersDeadlineAt: Date.now() + context.timeoutMs, bodyIdleMs: 0, signal },
    );
  } catch (error) {
    if (signal.aborted) return { kind: 'stopped' };
    if (error instanceof SendFailure) return { kind: 'lost', progressed: false };
    throw error;
  }
  try {
    if (response.status < 200 || response.status >= 300) return await refused(response, endpoint, cursor);
    return yield* readEvents(response, cursor, context.idleTimeoutMs);
  } catch (error) {
    if (signal.aborted) return { kind: 'stopped' };
    if (error instanceof CairnClientError) throw error;
    return { kind: 'lost', progressed: false }; // the connection broke or fell silent
  } finally {
    response.release();
  }
}

/** A watch request answered with an error status: retry elsewhere when the member could not serve it, else the error. */
async function refused(response: StreamResponse, endpoint: Endpoint, cursor: WatchCursor): Promise<StreamEnd> {
  const chunks: Buffer[] = [];
  for await (const chunk of response.body) chunks.push(chunk);
  const body: HttpResponse = { status: response.status, headers: response.headers, body: Buffer.concat(chunks) };
  const error = errorFromHttp(body, endpoint.url);
  if (response.status >= 500) return { kind: 'lost', progressed: false };
  if (error instanceof CompactedError && cursor.retryAfterCompacted(error.compactRevision)) return { kind: 'again' };
  throw error;
}

function parseRevision(v: string | undefined, what: string): number {
  if (v === undefined || !/^\d{1,15}$/.test(v)) throw new InternalError(`watch ${what} has no valid revision (${JSON.stringify(v)})`);
  return Number(v);
}

function parseData(message: SseMessage): Record<string, unknown> {
  try {
    const data = JSON.parse(message.data) as unknown;
    if (typeof data === 'object' && data !== null) return data as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new InternalError(`watch ${message.event} notice has malformed data`);
}

function decodeEvent(message: SseMessage & { event: 'put' | 'delete' }): WatchEvent {
  try {
    return decodeWatchEvent(message.event, message.data);
  } catch (error) {
    throw new InternalError(`watch event at revision ${message.id} is malformed`, undefined, { cause: error });
  }
}

/**
 * The events of one connection's body, grouped by revision and filtered by the
 * cursor. A stream silent for idleTimeoutMs while the client waits for it (a
 * member gone without closing the connection) is let go, which ends it as lost.
 */
async function* readEvents(response: StreamResponse, cursor: WatchCursor, idleTimeoutMs: number): AsyncGenerator<WatchBatch, StreamEnd, undefined> {
  let timer: NodeJS.Timeout | undefined;
  const silence = {
    arm: () => {
      timer = setTimeout(() => response.release(), idleTimeoutMs);
    },
    disarm: () => clearTimeout(timer),
  };
  silence.arm();
  try {
    return yield* readMessages(response, cursor, silence);
  } finally {
    silence.disarm();
  }
}

async function* readMessages(
  response: StreamResponse,
  cursor: WatchCursor,
  silence: { arm(): void; disarm(): void },
): AsyncGenerator<WatchBatch, StreamEnd, undefined> {
  const parser = new SseParser();
  let pending: { revision: number; events: WatchEvent[] } | undefined;
  let progressed = false;
  /** The pending events as a batch of what is new; `complete` when a later message proved they are all in. */
  const flush = (complete: boolean): WatchBatch | undefined => {
    if (!pending) return undefined;
    const { revision, events } = pending;
    pending = undefined;
    const fresh = cursor.accept(revision, events);
    if (complete) cursor.complete(revision);
    return fresh.length > 0 ? { revision, events: fresh, progress: false } : undefined;
  };
  for await (const chunk of response.body) {
    // Not armed while a batch is with the consumer: a slow consumer is not a dead member.
    silence.disarm();
    let messages: SseMessage[];
    try {
      messages = parser.push(chunk);
    } catch (error) {
      throw new TooLargeError('a watch event is too large for this client', { cause: error });
    }
    for (const message of messages) {
      const event = message.event;
      if (event === 'put' || event === 'delete') {
        const revision = parseRevision(message.id, 'event');
        if (pending && pending.revision !== revision) {
          const batch = flush(true);
          if (batch) yield batch;
        }
        pending ??= { revision, events: [] };
        pending.events.push(decodeEvent({ ...message, event }));
        progressed = true;
        continue;
      }
      if (event !== 'progress' && event !== 'compacted' && event !== 'closed') continue; // unknown notices: not ours
      const batch = flush(true);
      if (batch) yield batch;
      const data = parseData(message);
      if (event === 'progress') {
        const revision = parseRevision(String(data.revision), 'progress');
        progressed = true;
        if (cursor.progress(revision)) yield { revision, events: [], progress: true };
      } else if (event === 'compacted') {
        const compactRevision = parseRevision(String(data.compactRevision), 'compacted notice');
        if (cursor.retryAfterCompacted(compactRevision)) return { kind: 'again' };
        throw new CompactedError(`the watch's history is compacted (compactRevision ${compactRevision})`, compactRevision);
      } else {
        return { kind: 'lost', progressed }; // the member closed the watch (shutting down, too slow...)
      }
    }
    if (!parser.midMessage) {
      const batch = flush(false);
      if (batch) yield batch;
    }
    silence.arm();
  }
  return { kind: 'lost', progressed };
}

// One HTTP exchange with one endpoint, over an undici dispatcher (kept-alive
// connections). The point of doing it on the dispatch level: knowing whether
// the request may have reached the server. undici calls onRequestStart just
// before it writes the request on a connected socket; a failure before that
// (refused, DNS, connect timeout, cancelled while queued) certainly sent
// nothing, so even a write can be retried elsewhere. A failure after it leaves
// a write's outcome unknown.

import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';

export type HttpMethod = 'GET' | 'PUT' | 'POST' | 'DELETE';

export interface HttpRequest {
  readonly method: HttpMethod;
  /** Path and query, starting with `/`. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Uint8Array;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** An endpoint: where a base URL's requests go. */
export interface Endpoint {
  /** The URL as configured (for messages). */
  readonly url: string;
  /** scheme://host:port */
  readonly origin: string;
  /** Path prefix without a trailing `/` (usually empty). */
  readonly basePath: string;
}

export function parseEndpoint(url: string): Endpoint {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`endpoint ${JSON.stringify(url)} is not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new TypeError(`endpoint ${url} must be http: or https:`);
  if (parsed.search || parsed.hash || parsed.username) throw new TypeError(`endpoint ${url} must not have a query, fragment or credentials`);
  return { url, origin: parsed.origin, basePath: parsed.pathname.replace(/\/+$/, '') };
}

export type FailureKind =
  /** The connection failed or broke. */
  | 'network'
  /** The call's deadline passed. */
  | 'deadline'
  /** The caller's signal fired. */
  | 'aborted'
  /** The response was larger than allowed. */
  | 'too-large';

/** Why an exchange produced no response, and whether the request may have reached the server. */
export class SendFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    /** False only when the request certainly was not written to a socket. */
    readonly sent: boolean,
    readonly endpoint: Endpoint,
    cause: unknown,
  ) {
    super(`${kind} (${sent ? 'after' : 'before'} sending) with ${endpoint.url}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

export interface SendLimits {
  /** Absolute time (Date.now() scale) by which the whole response must be in. */
  readonly deadlineAt: number;
  readonly signal: AbortSignal | undefined;
  readonly maxResponseBytes: number;
}

/** Collects one response in memory and records whether the request went out. */
class UnaryHandler implements Dispatcher.DispatchHandler {
  sent = false;
  #controller: Dispatcher.DispatchController | undefined;
  #cancelled: SendFailure | undefined;
  #status = 0;
  #headers: IncomingHttpHeaders = {};
  #chunks: Buffer[] = [];
  #size = 0;

  constructor(
    private readonly endpoint: Endpoint,
    private readonly maxResponseBytes: number,
    private readonly settle: (outcome: HttpResponse | SendFailure) => void,
  ) {}

  /** Ends the exchange from our side; a request not yet written never will be. */
  cancel(kind: FailureKind, reason: unknown): void {
    const failure = new SendFailure(kind, this.sent, this.endpoint, reason);
    this.#cancelled = failure;
    // Settle first: aborting reports an error back (onResponseError) synchronously.
    this.settle(failure);
    this.#controller?.abort(failure);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (this.#cancelled) return controller.abort(this.#cancelled);
    this.sent = true;
    this.#controller = controller;
  }

  onResponseStart(_controller: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders): void {
    this.#status = status;
    this.#headers = headers;
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#size += chunk.length;
    if (this.#size > this.maxResponseBytes) {
      this.cancel('too-large', new RangeError(`response is larger than ${this.maxResponseBytes} bytes`));
      return;
    }
    this.#chunks.push(chunk);
  }

  onResponseEnd(): void {
    const body = this.#chunks.length === 1 ? this.#chunks[0] : Buffer.concat(this.#chunks);
    this.settle({ status: this.#status, headers: this.#headers, body });
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, error: Error): void {
    this.settle(new SendFailure('network', this.sent, this.endpoint, error));
  }
}

/**
 * One request/response with one endpoint, within the deadline and the signal.
 * Resolves with any HTTP response (error statuses included); rejects only with
 * a SendFailure.
 */
export function sendUnary(dispatcher: Dispatcher, endpoint: Endpoint, request: HttpRequest, limits: SendLimits): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const onAbort = (): void => handler.cancel('aborted', limits.signal?.reason);
    const settle = (outcome: HttpResponse | SendFailure): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      limits.signal?.removeEventListener('abort', onAbort);
      if (outcome instanceof SendFailure) reject(outcome);
      else resolve(outcome);
    };
    const handler = new UnaryHandler(endpoint, limits.maxResponseBytes, settle);
    if (limits.signal?.aborted) return handler.cancel('aborted', limits.signal.reason);
    const remainingMs = limits.deadlineAt - Date.now();
    if (remainingMs <= 0) return handler.cancel('deadline', new Error('deadline passed before sending'));
    timer = setTimeout(() => handler.cancel('deadline', new Error(`no response within the deadline`)), remainingMs);
    limits.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      dispatcher.dispatch(
        {
          origin: endpoint.origin,
          path: endpoint.basePath + request.path,
          method: request.method,
          headers: request.headers,
          body: request.body,
          // Our own timer bounds the exchange; undici's would only add timers.
          headersTimeout: 0,
          bodyTimeout: 0,
        },
        handler,
      );
    } catch (error) {
      settle(new SendFailure('network', handler.sent, endpoint, error));
    }
  });
}

export interface StreamResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The body as it arrives; iterating it after `signal` fires throws. */
  readonly body: AsyncIterable<Buffer>;
  /** Lets go of the connection (destroying an unread body) and of the signal's listener. Call it once done. */
  release(): void;
}

export interface StreamLimits {
  /** By when the response headers must be in (the body may take as long as it needs). */
  readonly headersDeadlineAt: number;
  /** Longest silence while reading the body before it counts as a broken connection (0: none). */
  readonly bodyIdleMs: number;
  /** Ends the exchange, also while the body is being read. */
  readonly signal: AbortSignal;
}

/**
 * A GET whose body is read as a stream (watch, snapshot). Rejects with a
 * SendFailure when no response headers arrive.
 */
export async function openStream(dispatcher: Dispatcher, endpoint: Endpoint, request: HttpRequest, limits: StreamLimits): Promise<StreamResponse> {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(limits.signal.reason);
  if (limits.signal.aborted) throw new SendFailure('aborted', false, endpoint, limits.signal.reason);
  limits.signal.addEventListener('abort', onAbort, { once: true });
  let timedOut = false;
  const timer = setTimeout(
    () => {
      timedOut = true;
      controller.abort(new Error('no response headers within the deadline'));
    },
    Math.max(0, limits.headersDeadlineAt - Date.now()),
  );
  try {
    const response = await dispatcher.request({
      origin: endpoint.origin,
      path: endpoint.basePath + request.path,
      method: request.method,
      headers: request.headers,
      signal: controller.signal,
      headersTimeout: 0,
      bodyTimeout: limits.bodyIdleMs,
    });
    const release = (): void => {
      limits.signal.removeEventListener('abort', onAbort);
      if (!response.body.destroyed) response.body.destroy();
    };
    return { status: response.statusCode, headers: response.headers, body: response.body, release };
  } catch (error) {
    limits.signal.removeEventListener('abort', onAbort);
    const kind: FailureKind = limits.signal.aborted ? 'aborted' : timedOut ? 'deadline' : 'network';
    throw new SendFailure(kind, true, endpoint, kind === 'aborted' ? limits.signal.reason : error);
  } finally {
    clearTimeout(timer);
  }
}

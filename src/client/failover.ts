// Which endpoint a call goes to, and when a failed call may go to another.
//
// Every endpoint is a member that answers every request, so a call sticks to the
// current endpoint while it works and moves to the next on a connection failure
// or 503 Unavailable. Retrying is decided by what is known about the request:
//   - it certainly reached no server (refused, DNS, connect timeout, still
//     queued), or the server said 503 (nothing happened): retry, reads and writes;
//   - it may have reached a server (broken after sending, 504, no answer):
//     retry only idempotent calls; for a write, the outcome is unknown and the
//     caller is told so (TimeoutError), never a retry that could apply it twice.
// Every wait is bounded by the call's deadline and its AbortSignal.

import type { Dispatcher } from 'undici';
import { errorFromHttp } from './codec.js';
import {
  AbortedError,
  CairnClientError,
  ClientClosedError,
  ConnectionError,
  TimeoutError,
  TooLargeError,
  type EndpointFailure,
} from './errors.js';
import { openStream, SendFailure, sendUnary, type Endpoint, type HttpRequest, type HttpResponse, type StreamResponse } from './http.js';

/** The endpoints in a fixed order, and which one calls use now. */
export class EndpointRing {
  #index: number;
  constructor(
    readonly endpoints: readonly Endpoint[],
    start: Endpoint | undefined = undefined,
  ) {
    if (endpoints.length === 0) throw new TypeError('at least one endpoint is needed');
    this.#index = start === undefined ? 0 : Math.max(0, endpoints.indexOf(start));
  }
  get size(): number {
    return this.endpoints.length;
  }
  current(): Endpoint {
    return this.endpoints[this.#index];
  }
  /** Moves past `endpoint` when it is still the current one, so calls failing on it together move once. */
  failed(endpoint: Endpoint): void {
    if (this.endpoints[this.#index] === endpoint) this.#index = (this.#index + 1) % this.endpoints.length;
  }
}

export interface BackoffOptions {
  /** First wait after every endpoint failed once. */
  readonly initialMs: number;
  /** Longest wait. */
  readonly maxMs: number;
}

/** The wait before try number `round` (1-based) of a whole round of endpoints: doubling, capped, with jitter in [50%, 100%]. */
export function backoffMs(round: number, options: BackoffOptions): number {
  const full = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(round - 1, 30));
  return Math.round(full * (0.5 + Math.random() / 2));
}

/** Waits `ms`, or less when the signal fires first; never rejects. */
export function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted || ms <= 0) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

export interface CallPolicy {
  /** Retry even after the request may have reached a server: reads and other calls that are safe to repeat. */
  readonly idempotent: boolean;
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
}

export interface RequesterOptions {
  readonly backoff: BackoffOptions;
  readonly maxResponseBytes: number;
  readonly isClosed: () => boolean;
}

/** What one call has learnt so far from its attempts, to pick the error to give up with. */
class Attempts {
  readonly failures = new Map<Endpoint, unknown>();
  /** The last answer of a server that said to try elsewhere (503, or 504 for a read). */
  lastServerError: CairnClientError | undefined;
  count = 0;

  constructor(
    readonly options: CallPolicy,
    readonly deadlineAt: number,
  ) {}

  record(endpoint: Endpoint, error: unknown): void {
    this.failures.delete(endpoint); // keep the map in order of the latest failure
    this.failures.set(endpoint, error);
  }

  endpointFailures(): EndpointFailure[] {
    return [...this.failures].map(([endpoint, error]) => ({ endpoint: endpoint.url, error }));
  }

  /** The error for a call whose time ran out; `inFlight` is the attempt the deadline cut short, if any. */
  deadlineError(inFlight: SendFailure | undefined): CairnClientError {
    const ms = this.options.timeoutMs;
    if (inFlight?.sent) {
      return this.options.idempotent
        ? new TimeoutError(`no answer from ${inFlight.endpoint.url} within ${ms} ms`, { cause: inFlight })
        : new TimeoutError(`no answer from ${inFlight.endpoint.url} within ${ms} ms; the request may or may not have been applied`, { cause: inFlight });
    }
    if (this.lastServerError) return this.lastServerError;
    if (inFlight) this.record(inFlight.endpoint, inFlight);
    const failures = this.endpointFailures();
    // Say why in the message itself (a refused connection, a certificate not trusted...), not only in `causes`.
    const reasons = failures.map((f) => `${f.endpoint}: ${reasonOf(f.error)}`).join('; ');
    return new ConnectionError(`no endpoint could be reached within ${ms} ms (${this.count} attempts)${reasons ? `: ${reasons}` : ''}`, failures);
  }
}

/** The innermost message of an error chain (undici wraps the socket's error as its cause). */
function reasonOf(error: unknown): string {
  let e: unknown = error;
  for (let depth = 0; depth < 5 && e instanceof Error && e.cause instanceof Error; depth++) e = e.cause;
  return e instanceof Error ? e.message || e.name : String(e);
}

/** Sends calls with failover over the ring. */
export class Requester {
  constructor(
    private readonly ring: EndpointRing,
    private readonly dispatcher: Dispatcher,
    private readonly options: RequesterOptions,
  ) {}

  /** A 2xx response from some endpoint, or the typed error that ends the call. */
  async unary(request: HttpRequest, options: CallPolicy): Promise<{ response: HttpResponse; endpoint: Endpoint }> {
    const attempts = new Attempts(options, Date.now() + options.timeoutMs);
    for (;;) {
      await this.#beforeAttempt(attempts);
      const endpoint = this.ring.current();
      attempts.count++;
      let response: HttpResponse;
      try {
        response = await sendUnary(this.dispatcher, endpoint, request, {
          deadlineAt: attempts.deadlineAt,
          signal: options.signal,
          // A write's answer is never dropped for its size: that would turn its success into a failure.
          maxResponseBytes: options.idempotent ? this.options.maxResponseBytes : Number.MAX_SAFE_INTEGER,
        });
      } catch (error) {
        if (!(error instanceof SendFailure)) throw error;
        this.#onSendFailure(error, attempts);
        continue;
      }
      if (response.status >= 200 && response.status < 300) return { response, endpoint };
      const failure = errorFromHttp(response, endpoint.url);
      const elsewhere = response.status === 503 || (options.idempotent && response.status === 504);
      if (!elsewhere) throw failure;
      attempts.lastServerError = failure;
      attempts.record(endpoint, failure);
      this.ring.failed(endpoint);
    }
  }

  /** A streamed GET (always idempotent): failover until response headers arrive, then the body is the caller's. */
  async stream(
    request: HttpRequest,
    options: { readonly timeoutMs: number; readonly bodyIdleMs: number; readonly signal: AbortSignal },
  ): Promise<{ response: StreamResponse; endpoint: Endpoint }> {
    const attempts = new Attempts({ ...options, idempotent: true }, Date.now() + options.timeoutMs);
    for (;;) {
      await this.#beforeAttempt(attempts);
      const endpoint = this.ring.current();
      attempts.count++;
      let response: StreamResponse;
      try {
        response = await openStream(this.dispatcher, endpoint, request, {
          headersDeadlineAt: attempts.deadlineAt,
          bodyIdleMs: options.bodyIdleMs,
          signal: options.signal,
        });
      } catch (error) {
        if (!(error instanceof SendFailure)) throw error;
        this.#onSendFailure(error, attempts);
        continue;
      }
      if (response.status >= 200 && response.status < 300) return { response, endpoint };
      const body = await readAll(response);
      const failure = errorFromHttp(body, endpoint.url);
      if (response.status !== 503 && response.status !== 504) throw failure;
      attempts.lastServerError = failure;
      attempts.record(endpoint, failure);
      this.ring.failed(endpoint);
    }
  }

  /** Throws when the call must end now; waits out the backoff after each full round of endpoints. */
  async #beforeAttempt(attempts: Attempts): Promise<void> {
    const signal = attempts.options.signal;
    if (this.options.isClosed()) throw new ClientClosedError();
    if (attempts.count > 0) {
      const waitMs = attempts.count % this.ring.size === 0 ? backoffMs(attempts.count / this.ring.size, this.options.backoff) : 0;
      // A retry needs a fair share of the deadline: one cut short after sending would turn a
      // write's clean "nothing happened" (Unavailable, refused) into an unknown outcome.
      const retryWindowMs = attempts.options.timeoutMs / 4;
      if (attempts.deadlineAt - Date.now() - waitMs < retryWindowMs) throw attempts.deadlineError(undefined);
      await pause(waitMs, signal);
    }
    if (signal?.aborted) throw new AbortedError('the call was aborted', false, signal.reason);
    if (Date.now() >= attempts.deadlineAt) throw attempts.deadlineError(undefined);
  }

  /** Decides what a failed exchange means: throws when the call ends, returns to try the next endpoint. */
  #onSendFailure(failure: SendFailure, attempts: Attempts): void {
    const { idempotent, signal } = attempts.options;
    switch (failure.kind) {
      case 'aborted':
        throw new AbortedError(
          failure.sent && !idempotent ? 'the call was aborted after the request was sent; it may or may not have been applied' : 'the call was aborted',
          failure.sent && !idempotent,
          signal?.reason,
        );
      case 'deadline':
        throw attempts.deadlineError(failure);
      case 'too-large':
        throw new TooLargeError(`the response from ${failure.endpoint.url} is larger than ${this.options.maxResponseBytes} bytes (maxResponseBytes)`, { cause: failure });
      case 'network':
        if (failure.sent && !idempotent) {
          throw new TimeoutError(`the connection to ${failure.endpoint.url} broke after the request was sent; it may or may not have been applied`, { cause: failure });
        }
        attempts.record(failure.endpoint, failure);
        this.ring.failed(failure.endpoint);
    }
  }
}

/** The rest of a streamed response in memory (an error answer: small). */
async function readAll(response: StreamResponse): Promise<HttpResponse> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of response.body) chunks.push(chunk);
  } catch {
    // What arrived is enough to classify the error by its status.
  } finally {
    response.release();
  }
  return { status: response.status, headers: response.headers, body: Buffer.concat(chunks) };
}

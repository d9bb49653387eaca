// Plain HTTP calls from the test to one member, with undici and a deadline each.
// No retries and no failover: the test decides where every request goes.

import { Agent, request, errors } from 'undici';

/** One shared pool of kept-alive connections; close() it at the end of a run. */
export function newAgent(): Agent {
  return new Agent({ connections: 64, connect: { timeout: 1000 }, keepAliveTimeout: 10_000, pipelining: 1 });
}

export interface HttpAnswer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/**
 * How a request that got no answer ended:
 * - `not-sent`: the connection was refused or never opened, so the member never saw it;
 * - `lost`: it may have reached the member (socket error, reset, our deadline).
 */
export type NoAnswer = { readonly kind: 'not-sent' | 'lost'; readonly reason: string };

export class NoAnswerError extends Error {
  override readonly name = 'NoAnswerError';
  constructor(readonly noAnswer: NoAnswer) {
    super(`${noAnswer.kind}: ${noAnswer.reason}`);
  }
}

const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EADDRNOTAVAIL']);

/** Classifies an error from undici: only a connection that never opened proves the request was not sent. */
export function classifyError(error: unknown): NoAnswer {
  const e = error as { code?: string; cause?: { code?: string }; message?: string; name?: string };
  const code = e.code ?? e.cause?.code;
  if (code !== undefined && NOT_SENT_CODES.has(code)) return { kind: 'not-sent', reason: code };
  if (error instanceof errors.ConnectTimeoutError) return { kind: 'not-sent', reason: 'connect timeout' };
  return { kind: 'lost', reason: code ?? e.name ?? String(error) };
}

export interface CallOptions {
  readonly method?: 'GET' | 'PUT' | 'POST' | 'DELETE';
  readonly body?: string;
  readonly headers?: Record<string, string>;
  readonly timeoutMs: number;
  readonly agent: Agent;
}

/** One request; resolves with any HTTP answer, throws NoAnswerError when there is none. */
export async function call(url: string, options: CallOptions): Promise<HttpAnswer> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error('client deadline')), options.timeoutMs);
  try {
    const response = await request(url, {
      method: options.method ?? 'GET',
      body: options.body,
      headers: options.headers,
      signal: controller.signal,
      dispatcher: options.agent,
    });
    const text = await response.body.text();
    let body: Record<string, unknown> = {};
    if (text !== '') {
      try {
        body = JSON.parse(text) as Record<string, unknown>;
      } catch {
        body = { text };
      }
    }
    return { status: response.statusCode, body };
  } catch (error) {
    if (controller.signal.aborted) throw new NoAnswerError({ kind: 'lost', reason: 'client deadline' });
    throw new NoAnswerError(classifyError(error));
  } finally {
    clearTimeout(timer);
  }
}

/** The same call, or undefined on no answer (for probes where the reason does not matter). */
export async function probe(url: string, options: CallOptions): Promise<HttpAnswer | undefined> {
  try {
    return await call(url, options);
  } catch (error) {
    if (error instanceof NoAnswerError) return undefined;
    throw error;
  }
}

// A request's deadline: a backend call gets a signal that fires when the
// request's time is up or when its client goes away, whichever comes first.
// One controller and one timer per request, released with the answer.
// A call that outlives its deadline is answered Timeout (504, outcome unknown)
// even if the backend ignores the signal.

import type { FastifyReply } from 'fastify';
import { CairnError, TimeoutError } from '../errors.js';

/** The client closed the connection before its answer: there is no one to answer. */
export class ClientGoneError extends Error {
  constructor() {
    super('the client went away before the answer');
    this.name = 'ClientGoneError';
  }
}

/** The outcome of `promise`, or the signal's reason once it fires (the promise is then left to settle on its own). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    if (signal.aborted) {
      promise.catch(() => undefined);
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        // A backend that gives up because of the signal says so in its own words; the signal's reason is the answer.
        reject(signal.aborted && !(error instanceof CairnError) ? signal.reason : error);
      },
    );
  });
}

/**
 * Runs a backend call under the request's deadline: `timeoutMs` after now, or
 * the client closing the connection. Rejects with TimeoutError or ClientGoneError then.
 */
export async function callWithDeadline<T>(reply: FastifyReply, timeoutMs: number, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new TimeoutError(`no answer within ${timeoutMs} ms; the request may or may not have been applied`)),
    timeoutMs,
  );
  const onClose = (): void => {
    if (!reply.raw.writableFinished) controller.abort(new ClientGoneError());
  };
  reply.raw.once('close', onClose);
  try {
    return await untilAborted(Promise.resolve().then(() => call(controller.signal)), controller.signal);
  } finally {
    clearTimeout(timer);
    reply.raw.off('close', onClose);
  }
}

/** A signal that fires when the client closes the connection before the response is finished (streams: watch, snapshot). */
export function clientGoneSignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new ClientGoneError());
  });
  return controller.signal;
}

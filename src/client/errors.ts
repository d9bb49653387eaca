// The errors a client call can end with. Server errors are one class per code
// of shared/API.md (one table below, kept in step with the document by a test);
// the client adds its own few for what no server said: no endpoint reachable,
// the caller aborted, the client closed, a malformed answer.
//
// `status` is the HTTP status of the response the error came from, or 0 when
// the client decided the error itself (nothing came back, or a check before
// sending). `outcomeUnknown` is true when a write may or may not have been
// applied; every other error means the request changed nothing.

import type { KeyValue } from './key-value.js';

/** API.md's error codes and their HTTP statuses. */
export const SERVER_ERROR_STATUS = {
  InvalidArgument: 400,
  Unauthenticated: 401,
  PermissionDenied: 403,
  KeyNotFound: 404,
  Compacted: 410,
  CompareFailed: 412,
  TooLarge: 413,
  NoSpace: 507,
  Unavailable: 503,
  Timeout: 504,
} as const;

export type ServerErrorCode = keyof typeof SERVER_ERROR_STATUS;
/** Codes the client produces itself; `Internal` also stands for a server error outside API.md's table. */
export type ClientOnlyErrorCode = 'Connection' | 'Aborted' | 'Closed' | 'Internal';
export type ErrorCode = ServerErrorCode | ClientOnlyErrorCode;

export interface ErrorDetails {
  /** HTTP status of the response, or 0 when no response decided the error. */
  readonly status?: number;
  readonly cause?: unknown;
}

/** Base of every error the client throws on purpose. */
export class CairnClientError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = `${code}Error`;
    this.code = code;
    this.status = details.status ?? 0;
  }
  /** True when the request may or may not have been applied (only TimeoutError and some AbortedErrors). */
  get outcomeUnknown(): boolean {
    return false;
  }
}

export class InvalidArgumentError extends CairnClientError {
  constructor(message: string, details?: ErrorDetails) {
    super('InvalidArgument', message, details);
  }
}
export class UnauthenticatedError extends CairnClientError {
  constructor(message: string, details?: ErrorDetails) {
    super('Unauthenticated', message, details);
  }
}
export class PermissionDeniedError extends CairnClientError {
  constructor(message: string, details?: ErrorDetails) {
    super('PermissionDenied', message, details);
  }
}
/** The key, lease or member named does not exist. (`Client.get` returns null instead.) */
export class KeyNotFoundError extends CairnClientError {
  constructor(message: string, details?: ErrorDetails) {
    super('KeyNotFound', message, details);
  }
}
/** The revision asked for is below the compacted one; history before `compactRevision` is gone. */
export class CompactedError extends CairnClientError {
  readonly compactRevision: number;
  constructor(message: string, compactRevision: number, details?: ErrorDetails) {
    super('Compacted', message, details);
    this.compactRevision = compactRevision;
  }
}
/** A condition (ifVersion, ifModRevision) did not hold; nothing was written. `kv` is the key as it is now, absent when it does not exist. */
export class CompareFailedError extends CairnClientError {
  readonly kv: KeyValue | undefined;
  constructor(message: string, kv: KeyValue | undefined, details?: ErrorDetails) {
    super('CompareFailed', message, details);
    this.kv = kv;
  }
}
/** A request or a response past a size limit. */
export class TooLargeError extends CairnClientError {
  constructor(message: string, details?: ErrorDetails) {
    super('TooLarge', message, details);
  }
}
/** The cluster's data size quota is exhausted: writes are refused until space is freed. */
export class NoSpaceError extends CairnClientError {
  constructor(message: string, details?: ErrorDetails) {
    super('NoSpace', message, details);
  }
}
/** Nothing happened (no leader, not ready, shutting down, busy) on every endpoint tried before the deadline. Safe to retry. */
export class UnavailableError extends CairnClientError {
  constructor(message: string, details?: ErrorDetails) {
    super('Unavailable', message, details);
  }
}
/**
 * The deadline passed, or the connection broke after the request was sent.
 * For a write the outcome is unknown: it may or may not have been applied.
 * Read it back (or use ifVersion / ifModRevision) before writing again.
 */
export class TimeoutError extends CairnClientError {
  constructor(message: string, details?: ErrorDetails) {
    super('Timeout', message, details);
  }
  override get outcomeUnknown(): boolean {
    return true;
  }
}
/**
 * No endpoint answered before the deadline (refused, unreachable, DNS, TLS, or
 * for a read also a broken connection). For a write it means the request
 * reached no server, so it certainly changed nothing. `causes` has the last
 * failure of each endpoint tried.
 */
export class ConnectionError extends CairnClientError {
  readonly causes: readonly EndpointFailure[];
  constructor(message: string, causes: readonly EndpointFailure[]) {
    super('Connection', message, causes.length > 0 ? { cause: causes[causes.length - 1].error } : {});
    this.causes = causes;
  }
}
export interface EndpointFailure {
  readonly endpoint: string;
  readonly error: unknown;
}
/**
 * The caller's AbortSignal fired. Its name is `AbortError`, as for fetch. For a
 * write already sent, `outcomeUnknown` is true. `cause` is the signal's reason.
 */
export class AbortedError extends CairnClientError {
  readonly #outcomeUnknown: boolean;
  constructor(message: string, outcomeUnknown: boolean, reason: unknown) {
    super('Aborted', message, { cause: reason });
    this.name = 'AbortError';
    this.#outcomeUnknown = outcomeUnknown;
  }
  override get outcomeUnknown(): boolean {
    return this.#outcomeUnknown;
  }
}
/** The client was closed. */
export class ClientClosedError extends CairnClientError {
  constructor(message = 'the client is closed') {
    super('Closed', message);
  }
}
/**
 * The server failed in a way API.md does not name (HTTP 500, an unknown code,
 * an answer the client cannot read). For a write, treat the outcome as unknown.
 */
export class InternalError extends CairnClientError {
  /** The code the server sent when it was not one of API.md's. */
  readonly serverCode: string | undefined;
  constructor(message: string, serverCode?: string, details?: ErrorDetails) {
    super('Internal', message, details);
    this.serverCode = serverCode;
  }
  override get outcomeUnknown(): boolean {
    return true;
  }
}

/** What a server's error body says, already decoded: `{code, message, kv?, compactRevision?}`. */
export interface ServerErrorBody {
  readonly code?: unknown;
  readonly message?: unknown;
  readonly compactRevision?: unknown;
}

function isServerCode(code: unknown): code is ServerErrorCode {
  return typeof code === 'string' && Object.hasOwn(SERVER_ERROR_STATUS, code);
}

/**
 * The code a bare HTTP status stands for, when the body did not say (a proxy's
 * 503, say). Not 404: without cairn's body it means a wrong URL, and reading it
 * as KeyNotFound would make every get() of a misconfigured client return null.
 */
function codeOfStatus(status: number): ServerErrorCode | undefined {
  if (status === SERVER_ERROR_STATUS.KeyNotFound) return undefined;
  for (const [code, s] of Object.entries(SERVER_ERROR_STATUS)) if (s === status) return code as ServerErrorCode;
  return undefined;
}

/**
 * The typed error for a server's error response. `kv` is the CompareFailed
 * body's current key-value, already decoded by the caller (it knows the format).
 */
export function errorFromResponse(status: number, body: ServerErrorBody | undefined, kv: KeyValue | undefined, endpoint: string): CairnClientError {
  const code = isServerCode(body?.code) ? body.code : body?.code === undefined ? codeOfStatus(status) : undefined;
  const message = typeof body?.message === 'string' ? body.message : `HTTP ${status} from ${endpoint} without a cairn error body`;
  const details = { status };
  switch (code) {
    case 'InvalidArgument':
      return new InvalidArgumentError(message, details);
    case 'Unauthenticated':
      return new UnauthenticatedError(message, details);
    case 'PermissionDenied':
      return new PermissionDeniedError(message, details);
    case 'KeyNotFound':
      return new KeyNotFoundError(message, details);
    case 'Compacted': {
      const c = body?.compactRevision;
      return new CompactedError(message, typeof c === 'number' ? c : 0, details);
    }
    case 'CompareFailed':
      return new CompareFailedError(message, kv, details);
    case 'TooLarge':
      return new TooLargeError(message, details);
    case 'NoSpace':
      return new NoSpaceError(message, details);
    case 'Unavailable':
      return new UnavailableError(message, details);
    case 'Timeout':
      return new TimeoutError(message, details);
    case undefined:
      return new InternalError(message, typeof body?.code === 'string' ? body.code : undefined, details);
  }
}

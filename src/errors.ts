// Every operating error a client can see: one table of code and HTTP status,
// matching ../shared/API.md (test/unit/server/errors.test.ts keeps them in step),
// and one class per code. Programmer errors are not here: they are failed
// assertions (plain Error) and reach a client only as a 500.

import type { KeyValue } from './kv/kv-commands.js';

/** API.md's error codes and their HTTP statuses. */
export const ERROR_CODES = Object.freeze({
  InvalidArgument: 400,
  Unauthenticated: 401,
  PermissionDenied: 403,
  KeyNotFound: 404,
  Compacted: 410,
  CompareFailed: 412,
  TooLarge: 413,
  NoSpace: 507,
  /** Nothing happened (no leader, not ready, shutting down, too busy): safe to retry. */
  Unavailable: 503,
  /** The outcome is unknown: the request may or may not have been applied. */
  Timeout: 504,
} as const);

export type ErrorCode = keyof typeof ERROR_CODES;

/** Extra fields of an error body, beside code and message (e.g. `compactRevision`, `kv`). */
export type ErrorDetails = Readonly<Record<string, unknown>>;

/** An operating error: a fixed code and HTTP status, a message for humans, and details for the body. */
export class CairnError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: ErrorDetails = {},
  ) {
    super(message);
    this.name = `${code}Error`;
    this.status = ERROR_CODES[code];
  }
}

/** The request is malformed or names something impossible; nothing was done. */
export class InvalidArgumentError extends CairnError {
  constructor(message: string) {
    super('InvalidArgument', message);
  }
}

export class UnauthenticatedError extends CairnError {
  constructor(message = 'authentication is required') {
    super('Unauthenticated', message);
  }
}

export class PermissionDeniedError extends CairnError {
  constructor(message = 'permission denied') {
    super('PermissionDenied', message);
  }
}

export class KeyNotFoundError extends CairnError {
  constructor(message = 'key not found') {
    super('KeyNotFound', message);
  }
}

/** The revision asked for is below the compacted revision; `details.compactRevision` says where history starts. */
export class CompactedError extends CairnError {
  constructor(
    readonly compactRevision: number,
    message = `the revision asked for is compacted (compactRevision ${compactRevision})`,
  ) {
    super('Compacted', message, { compactRevision });
  }
}

/** A condition (ifVersion, ifModRevision) did not hold; `details.kv` is the key as it is now, when it exists. */
export class CompareFailedError extends CairnError {
  constructor(
    message: string,
    readonly kv?: KeyValue,
  ) {
    super('CompareFailed', message, kv === undefined ? {} : { kv });
  }
}

/** A request, key or value past a limit; nothing was done. */
export class TooLargeError extends CairnError {
  constructor(message: string) {
    super('TooLarge', message);
  }
}

/** The data size quota is exhausted: writes are refused until space is freed (delete and compact). */
export class NoSpaceError extends CairnError {
  constructor(message = 'the data size quota is exhausted') {
    super('NoSpace', message);
  }
}

/** Nothing happened: no leader, not ready, shutting down, too busy. Safe to retry. */
export class UnavailableError extends CairnError {
  constructor(message: string) {
    super('Unavailable', message);
  }
}

/** The outcome is unknown: the request may or may not have been applied. */
export class TimeoutError extends CairnError {
  constructor(message = 'the request timed out; it may or may not have been applied') {
    super('Timeout', message);
  }
}

/** One class per code, for tests and for code that rebuilds an error from its code. */
export const ERROR_CLASSES = Object.freeze({
  InvalidArgument: InvalidArgumentError,
  Unauthenticated: UnauthenticatedError,
  PermissionDenied: PermissionDeniedError,
  KeyNotFound: KeyNotFoundError,
  Compacted: CompactedError,
  CompareFailed: CompareFailedError,
  TooLarge: TooLargeError,
  NoSpace: NoSpaceError,
  Unavailable: UnavailableError,
  Timeout: TimeoutError,
} as const satisfies Record<ErrorCode, abstract new (...args: never[]) => CairnError>);

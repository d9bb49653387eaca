// Every operating error a client can see: one table of code, HTTP status and
// meaning, matching ../shared/API.md (a test keeps them in step).

export const ERROR_CODES = {
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

export type ErrorCode = keyof typeof ERROR_CODES;

/** An operating error: a fixed code and HTTP status, a message for humans, and optional details for the body. */
export class CairnError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
    this.name = `${code}Error`;
    this.status = ERROR_CODES[code];
  }
}

export class InvalidArgumentError extends CairnError {
  constructor(message: string) {
    super('InvalidArgument', message);
  }
}
export class KeyNotFoundError extends CairnError {
  constructor(message = 'key not found') {
    super('KeyNotFound', message);
  }
}
export class CompactedError extends CairnError {
  constructor(compactRevision: number, message = `the revision asked for is compacted (compactRevision ${compactRevision})`) {
    super('Compacted', message, { compactRevision });
  }
}
export class CompareFailedError extends CairnError {
  constructor(message: string, kv?: unknown) {
    super('CompareFailed', message, kv === undefined ? {} : { kv });
  }
}
export class TooLargeError extends CairnError {
  constructor(message: string) {
    super('TooLarge', message);
  }
}
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

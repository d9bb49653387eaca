// The client routes' options: validated once, defaults filled in, frozen.

import type { Backend } from './backend.js';

export interface ClientRoutesOptions {
  readonly backend: Backend;
  /** Largest request body in bytes. Default 1572864 (API.md's --max-request-bytes). */
  readonly maxRequestBytes?: number;
  /**
   * Largest key in bytes. Default 8192. etcd has no key limit of its own (only
   * the request size); a bound keeps keys out of the way of URLs (a key travels
   * in the path, up to three characters per byte) and of memory.
   */
  readonly maxKeyBytes?: number;
  /** Largest value in bytes (a PUT body, a txn put). Default 1048576 (1 MiB). */
  readonly maxValueBytes?: number;
  /** Most compares, and most ops in each of success and failure, in one txn. Default 128 (etcd's --max-txn-ops). */
  readonly maxTxnOps?: number;
  /** A backend call without an answer by then is answered 504 Timeout (outcome unknown). Default 10000 ms. Not applied to watches and snapshots. */
  readonly requestTimeoutMs?: number;
}

/** Options with every default filled in. */
export interface ClientLimits {
  readonly maxRequestBytes: number;
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  readonly maxTxnOps: number;
  readonly requestTimeoutMs: number;
}

export const DEFAULT_LIMITS: ClientLimits = Object.freeze({
  maxRequestBytes: 1_572_864,
  maxKeyBytes: 8192,
  maxValueBytes: 1_048_576,
  maxTxnOps: 128,
  requestTimeoutMs: 10_000,
});

function positiveInteger(name: keyof ClientLimits, value: number | undefined): number {
  const n = value ?? DEFAULT_LIMITS[name];
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`clientRoutes option ${name} must be a positive integer (got ${String(value)})`);
  return n;
}

/** The limits of these options (defaults for the ones left out); throws RangeError on a malformed one. */
export function resolveLimits(options: ClientRoutesOptions): ClientLimits {
  return Object.freeze({
    maxRequestBytes: positiveInteger('maxRequestBytes', options.maxRequestBytes),
    maxKeyBytes: positiveInteger('maxKeyBytes', options.maxKeyBytes),
    maxValueBytes: positiveInteger('maxValueBytes', options.maxValueBytes),
    maxTxnOps: positiveInteger('maxTxnOps', options.maxTxnOps),
    requestTimeoutMs: positiveInteger('requestTimeoutMs', options.requestTimeoutMs),
  });
}

/** What every route handler needs. */
export interface RouteContext {
  readonly backend: Backend;
  readonly limits: ClientLimits;
}

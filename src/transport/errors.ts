// Operating errors of the peer transport, in one table: code, HTTP status, message.
// The codes are the ones shared/API.md lists for the client API, so a peer that
// logs or relays one of these speaks the same language.
// They stay apart from src/errors.ts (CairnError): they never reach a client; they are
// logged, or answered to a peer, which only reads the status and the code.

/** Why a peer request was refused. Every refusal answers with exactly one of these. */
export const PEER_REFUSALS = {
  wrongCluster: { code: 'PermissionDenied', statusCode: 403, message: 'cluster token does not match this cluster' },
  unknownSender: { code: 'PermissionDenied', statusCode: 403, message: 'sender is not a member of this cluster' },
  wrongReceiver: { code: 'PermissionDenied', statusCode: 403, message: 'request is addressed to another member' },
  malformedBody: { code: 'InvalidArgument', statusCode: 400, message: 'malformed message batch' },
  malformedSnapshot: { code: 'InvalidArgument', statusCode: 400, message: 'malformed snapshot request' },
  malformedMembership: { code: 'InvalidArgument', statusCode: 400, message: 'malformed membership request' },
  bodyTooLarge: { code: 'TooLarge', statusCode: 413, message: 'request body is larger than allowed' },
  unsupportedMediaType: { code: 'InvalidArgument', statusCode: 415, message: 'body must be application/octet-stream' },
  snapshotFailed: { code: 'Unavailable', statusCode: 503, message: 'the snapshot could not be installed' },
} as const;

export type PeerRefusal = keyof typeof PEER_REFUSALS;

/** Bytes that claim to be a batch of Raft messages are not one. Never reaches the Raft core. */
export class MalformedMessageError extends Error {
  override readonly name = 'MalformedMessageError';
  readonly code = 'InvalidArgument';
  readonly statusCode = 400;
}

/** A snapshot body was longer than the receiver allows. */
export class SnapshotTooLargeError extends Error {
  override readonly name = 'SnapshotTooLargeError';
  readonly code = 'TooLarge';
  readonly statusCode = 413;
  constructor(readonly maxSnapshotBytes: number) {
    super(`snapshot body exceeds ${maxSnapshotBytes} bytes`);
  }
}

/** A peer URL that the transport cannot send to (not http: or https:, or not a URL at all). */
export class InvalidPeerUrlError extends Error {
  override readonly name = 'InvalidPeerUrlError';
  readonly code = 'InvalidArgument';
  readonly statusCode = 400;
}

/** A peer request took longer than its deadline; the transport abandoned it. */
export class PeerRequestTimeoutError extends Error {
  override readonly name = 'PeerRequestTimeoutError';
  readonly code = 'Timeout';
  constructor(readonly timeoutMs: number) {
    super(`peer request timed out after ${timeoutMs} ms`);
  }
}

/**
 * A request to a peer was not carried out, and the caller knows it: there is no
 * connection to that member, it could not be connected to, or it refused the request
 * itself (a 4xx, PEER_REFUSALS). Nothing happened on the peer.
 */
export class PeerRequestRefusedError extends Error {
  override readonly name = 'PeerRequestRefusedError';
  readonly code = 'Unavailable';
  /** The peer's HTTP status when it answered one; undefined when it was never reached. */
  readonly statusCode: number | undefined;
  constructor(message: string, options: { statusCode?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.statusCode = options.statusCode;
  }
}

/**
 * A request to a peer may or may not have been acted on: the connection failed after it
 * was sent, the peer answered 5xx, or its answer was not one. (A deadline passing is
 * PeerRequestTimeoutError.)
 */
export class PeerRequestFailedError extends Error {
  override readonly name = 'PeerRequestFailedError';
  readonly code = 'Timeout';
}

// The HTTP contract between members, shared by the sender (peer-sender.ts) and the
// receiver (peer-routes.ts).
//
// POST /raft/messages
//   body: a stream of frames (frames.ts), each a 4-byte big-endian length and one batch
//   of messages in codec.ts format. The receiver hands each batch on as its frame
//   arrives; the sender keeps one such request open per peer and ends it after a few
//   seconds (message-stream.ts). Answers 204 once the body has ended and every frame was
//   taken; a bad frame is refused (below) at once, and nothing of it was taken (the
//   frames before it were).
// POST /raft/snapshot
//   header x-cairn-message: base64 of a one-message batch (codec.ts) holding the 'snap'
//   message with its snapshot metadata; the body is the snapshot's data, streamed
//   (chunked transfer encoding); answers 204 once the receiver has kept the snapshot.
// POST /raft/membership
//   body: one membership request (below); a member that is not the leader asks the
//   leader to make a membership change, as etcd's followers do for MemberAdd/Remove/
//   Promote. The leader makes it as it would a client's request (propose, wait until
//   applied, at most timeoutMs) and answers 200 with JSON: {"applied":true}, or
//   {"applied":false,"error":{"code","message"}} with the API error (shared/API.md) a
//   client of the leader would have got. The leader never forwards it again.
//
// All carry content-type application/octet-stream and:
//   x-cairn-cluster  the cluster token (--initial-cluster-token)
//   x-cairn-from     the sending member's id
//   x-cairn-to       the receiving member's id
// A refusal is 4xx with {"error":{"code","message"}} (errors.ts, PEER_REFUSALS): the
// request itself was not taken, and nothing happened.

import { Packr } from 'msgpackr';
import type { NodeId } from '../raft/types.js';
import { PeerRequestFailedError, PeerRequestRefusedError, PeerRequestTimeoutError } from './errors.js';
import { MEMBERSHIP_ERROR_CODES, type MembershipChange, type MembershipErrorCode, type MembershipOutcome } from './transport.js';

export const MESSAGES_PATH = '/raft/messages';
export const SNAPSHOT_PATH = '/raft/snapshot';
export const MEMBERSHIP_PATH = '/raft/membership';
export const PEER_CONTENT_TYPE = 'application/octet-stream';

export const HEADER_CLUSTER = 'x-cairn-cluster';
export const HEADER_FROM = 'x-cairn-from';
export const HEADER_TO = 'x-cairn-to';
export const HEADER_MESSAGE = 'x-cairn-message';

/** Printable ASCII only, so a value can travel in an HTTP header unchanged. */
export function isHeaderSafe(value: string): boolean {
  return value.length > 0 && /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(value);
}

// ---- membership requests -------------------------------------------------------------------
//
// msgpack of a map: {"version":1, "op":"add", "peerUrls":[url, ...], "learner":bool, "timeoutMs":N}
// or {"version":1, "op":"remove"|"promote", "memberId":"<16 hex digits>", "timeoutMs":N}.
// No other field is allowed: a misspelt one must not silently change the request.

export const MEMBERSHIP_WIRE_VERSION = 1;
/** Largest membership request body: 16 URLs of 1 KiB fit many times over. */
export const MEMBERSHIP_BODY_BYTES_MAX = 64 * 1024;
/** Longest a leader waits on a membership change for a peer, whatever the peer asks. */
export const MEMBERSHIP_TIMEOUT_MS_MAX = 60_000;
/** Longest error message relayed; a peer's answer is read only this far (plus its frame). */
export const MEMBERSHIP_MESSAGE_CHARS_MAX = 1024;
export const MEMBERSHIP_ANSWER_BYTES_MAX = 16 * 1024;
const PEER_URLS_MAX = 16;
const PEER_URL_CHARS_MAX = 1024;
/** As the client API accepts them (client-api.ts): the peer only ever relays those. */
const PEER_URL = /^https?:\/\/[^/]+:\d+\/?$/;
const MEMBER_ID = /^[0-9a-f]{16}$/;

// structuredClone: false refuses msgpackr's reference extensions, whose decoder trusts its input.
const packr = new Packr({ useRecords: false, structuredClone: false });

/** The request body asking the leader for `change` within `timeoutMs`. Throws RangeError for a request the receiver would refuse (a programmer error). */
export function encodeMembershipRequest(change: MembershipChange, timeoutMs: number): Uint8Array {
  const wire = { version: MEMBERSHIP_WIRE_VERSION, ...change, timeoutMs };
  const decoded = checkMembershipRequest(wire);
  if (typeof decoded === 'string') throw new RangeError(`membership request: ${decoded}`);
  return packr.pack(wire);
}

/** The change and deadline a request body holds, or why it holds none. Never throws. */
export function decodeMembershipRequest(bytes: Uint8Array): { change: MembershipChange; timeoutMs: number } | string {
  let decoded: unknown;
  try {
    decoded = packr.unpack(bytes);
  } catch (error) {
    return `body is not valid msgpack: ${error instanceof Error ? error.message : String(error)}`;
  }
  return checkMembershipRequest(decoded);
}

function checkMembershipRequest(value: unknown): { change: MembershipChange; timeoutMs: number } | string {
  if (typeof value !== 'object' || value === null || Object.getPrototypeOf(value) !== Object.prototype) return 'body must be a map';
  const fields = value as Record<string, unknown>;
  if (fields.version !== MEMBERSHIP_WIRE_VERSION) return `version must be ${MEMBERSHIP_WIRE_VERSION}`;
  const timeoutMs = fields.timeoutMs;
  if (typeof timeoutMs !== 'number' || !Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MEMBERSHIP_TIMEOUT_MS_MAX) {
    return `timeoutMs must be an integer from 1 to ${MEMBERSHIP_TIMEOUT_MS_MAX}`;
  }
  const op = fields.op;
  if (op !== 'add' && op !== 'remove' && op !== 'promote') return 'op must be "add", "remove" or "promote"';
  const allowed = op === 'add' ? ['version', 'op', 'peerUrls', 'learner', 'timeoutMs'] : ['version', 'op', 'memberId', 'timeoutMs'];
  const extra = Object.keys(fields).find((key) => !allowed.includes(key));
  if (extra !== undefined) return `unexpected field ${JSON.stringify(extra.slice(0, 64))}`;
  if (op === 'add') {
    const { peerUrls, learner } = fields;
    if (typeof learner !== 'boolean') return 'learner must be a boolean';
    if (!Array.isArray(peerUrls)) return 'peerUrls must be a list';
    const problem = peerUrlsProblem(peerUrls);
    if (problem !== undefined) return problem;
    return { change: { op, peerUrls: [...(peerUrls as string[])], learner }, timeoutMs };
  }
  const memberId = fields.memberId;
  if (typeof memberId !== 'string' || !MEMBER_ID.test(memberId)) return 'memberId must be 16 hex digits';
  return { change: { op, memberId }, timeoutMs };
}

/** Why these cannot be a member's peer URLs on the wire, or undefined when they can. */
export function peerUrlsProblem(peerUrls: readonly unknown[]): string | undefined {
  if (peerUrls.length === 0 || peerUrls.length > PEER_URLS_MAX) return `peerUrls must list 1 to ${PEER_URLS_MAX} URLs`;
  const bad = peerUrls.findIndex((url) => typeof url !== 'string' || url.length > PEER_URL_CHARS_MAX || !PEER_URL.test(url));
  if (bad >= 0) return `peerUrls[${bad}] is not an http(s)://host:port URL of at most ${PEER_URL_CHARS_MAX} characters`;
  return undefined;
}

/** The JSON body of a leader's answer (message cut to MEMBERSHIP_MESSAGE_CHARS_MAX). */
export function membershipAnswerBody(outcome: MembershipOutcome): object {
  if (outcome.applied) return { applied: true };
  return { applied: false, error: { code: outcome.code, message: outcome.message.slice(0, MEMBERSHIP_MESSAGE_CHARS_MAX) } };
}

/** The outcome a leader's answer body holds, or undefined when it holds none. Never throws. */
export function parseMembershipAnswer(text: string): MembershipOutcome | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { applied, error } = value as { applied?: unknown; error?: unknown };
  if (applied === true) return { applied: true };
  if (applied !== false || typeof error !== 'object' || error === null) return undefined;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (!MEMBERSHIP_ERROR_CODES.includes(code as MembershipErrorCode) || typeof message !== 'string') return undefined;
  return { applied: false, code: code as MembershipErrorCode, message: message.slice(0, MEMBERSHIP_MESSAGE_CHARS_MAX) };
}

/**
 * How long the leader may take on a request whose whole deadline is `timeoutMs`: a
 * tenth less (at most a second less), so that its own Timeout answer still arrives in time.
 */
export function membershipLeaderTimeoutMs(timeoutMs: number): number {
  const marginMs = Math.min(1000, Math.floor(timeoutMs / 10));
  return Math.max(1, Math.min(MEMBERSHIP_TIMEOUT_MS_MAX, timeoutMs - marginMs));
}

/** The outcome of a membership request that got an HTTP answer, or the error saying what is known of it. */
export function membershipAnswerOutcome(peer: NodeId, statusCode: number, text: string): MembershipOutcome {
  if (statusCode === 200) {
    const outcome = parseMembershipAnswer(text);
    if (outcome !== undefined) return outcome;
    throw new PeerRequestFailedError(`member ${peer} answered a membership request with no outcome: ${text.slice(0, 200)}`);
  }
  // A refusal (PEER_REFUSALS) is answered before the request is acted on.
  if (statusCode >= 400 && statusCode < 500) {
    throw new PeerRequestRefusedError(`member ${peer} refused the membership request (${statusCode}): ${text.slice(0, MEMBERSHIP_MESSAGE_CHARS_MAX)}`, { statusCode });
  }
  throw new PeerRequestFailedError(`member ${peer} answered the membership request ${statusCode}: ${text.slice(0, MEMBERSHIP_MESSAGE_CHARS_MAX)}`);
}

/**
 * What became of a membership request that got no answer. Not connected at all: nothing
 * was sent (refused). Otherwise the leader may have acted on it: unknown.
 */
export function membershipRequestFailure(peer: NodeId, error: unknown, signal: AbortSignal): Error {
  if (error instanceof PeerRequestRefusedError || error instanceof PeerRequestFailedError || error instanceof PeerRequestTimeoutError) return error;
  if (signal.aborted) {
    const reason: unknown = signal.reason;
    if (reason instanceof PeerRequestTimeoutError || reason instanceof PeerRequestFailedError) return reason;
    return new PeerRequestFailedError(`the membership request to ${peer} was abandoned: ${String(reason)}`);
  }
  if ((error as { code?: unknown }).code === 'ECONNREFUSED') {
    return new PeerRequestRefusedError(`member ${peer} could not be connected to (connection refused)`, { cause: error });
  }
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return new PeerRequestFailedError(`the membership request to ${peer} failed: ${text}`, { cause: error });
}


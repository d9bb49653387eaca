// What the node needs from a transport, implemented over HTTP (peer-sender.ts) and in
// memory for tests (memory-transport.ts).

import type { Message, NodeId } from '../raft/types.js';

/**
 * Carries Raft messages to other members. Delivery is best effort: a message may be
 * lost (Raft retries), but messages to one peer that do arrive arrive in the order
 * they were sent, each at most once.
 */
export interface Transport {
  /**
   * Hands messages over for delivery and returns at once; never blocks, never waits for
   * the network. Messages to unknown peers are dropped and counted.
   * Throws (a programmer error) only for a message of a local-only type.
   */
  send(messages: readonly Message[]): void;
  /** Starts sending to a member at `url` (its peer URL). Adding a known member with a new URL updates it. */
  addPeer(id: NodeId, url: string): void;
  /** Points a member at a new peer URL; queued messages are kept. */
  updatePeer(id: NodeId, url: string): void;
  /** Stops sending to a member: drops its queue and abandons its requests. */
  removePeer(id: NodeId): void;
  /**
   * Asks member `to` (the leader) to make a membership change and to wait until it has
   * applied it; resolves with its answer, whatever it is. Rejects with
   * PeerRequestRefusedError when nothing happened (no connection to that member, it could
   * not be connected to, or it refused the request itself), and with PeerRequestTimeoutError
   * or PeerRequestFailedError when the outcome is unknown (no answer within `timeoutMs` or
   * before `signal` aborted, a connection lost mid-request, an answer that is not one).
   * The peer is told to answer a little before `timeoutMs`, so its own Timeout arrives in time.
   */
  requestMembershipChange(to: NodeId, change: MembershipChange, options: MembershipRequestOptions): Promise<MembershipOutcome>;
  /** Per-peer counters, as of now. */
  stats(): TransportStats;
  /** Abandons every request in flight and releases every connection. No callback fires after it resolves. */
  close(): Promise<void>;
}

/** What the sending side reports back to the node. Called asynchronously, never from inside `send()`. */
export interface TransportCallbacks {
  /** A peer could not be reached (Raft moves its progress to probing). Rate-limited per peer. */
  onUnreachable(id: NodeId): void;
  /** How sending a 'snap' message went. Called exactly once for every 'snap' message handed to `send()`, unless the transport closes or the peer is removed first. */
  onSnapshotStatus(id: NodeId, ok: boolean): void;
  /** The snapshot's data for a 'snap' message, as a stream of chunks. Called once per snapshot actually sent. */
  openSnapshot(message: Message): AsyncIterable<Uint8Array>;
}

/** A membership change one member asks the leader to make (API.md's member add, remove and promote). */
export type MembershipChange =
  | { readonly op: 'add'; readonly peerUrls: readonly string[]; readonly learner: boolean }
  | { readonly op: 'remove'; readonly memberId: string }
  | { readonly op: 'promote'; readonly memberId: string };

/** The API error codes a leader answers a membership change with (shared/API.md). */
export const MEMBERSHIP_ERROR_CODES = ['InvalidArgument', 'KeyNotFound', 'Unavailable', 'Timeout'] as const;
export type MembershipErrorCode = (typeof MEMBERSHIP_ERROR_CODES)[number];

/** The leader's answer: applied (on the leader), or the API error a local request would have got. */
export type MembershipOutcome =
  | { readonly applied: true }
  | { readonly applied: false; readonly code: MembershipErrorCode; readonly message: string };

export interface MembershipRequestOptions {
  /** Deadline of the whole request, connecting included. A positive integer. */
  readonly timeoutMs: number;
  /** The caller giving up; the request is abandoned (its outcome is then unknown). */
  readonly signal?: AbortSignal;
}

/**
 * Serves a membership change a peer asks for (the leader's side). Resolves with the
 * outcome, an API error included; rejects only on a failure that is no such answer.
 * `signal` aborts when the asking peer's deadline has passed or it went away.
 */
export type MembershipChangeHandler = (from: NodeId, change: MembershipChange, signal: AbortSignal) => Promise<MembershipOutcome>;

/** What the receiving side hands to the node. */
export interface TransportReceiver {
  /** A validated batch from one peer, in the order sent. Synchronous: the node queues them for its loop. */
  onMessages(messages: readonly Message[]): void;
  /**
   * A 'snap' message (metadata only; `snapshot.data` is empty) and its data. Resolve once
   * the snapshot is safely kept; reject if it is not. The body should be read to its end.
   */
  onSnapshot(message: Message, body: AsyncIterable<Uint8Array>): Promise<void>;
}

export interface PeerStats {
  /** Messages a peer acknowledged receiving (its response was 204). */
  readonly sentMessages: number;
  /** Requests that carried those messages. sentMessages / sentBatches is the batching factor. */
  readonly sentBatches: number;
  /** Messages dropped: queue full, request failed, or peer removed. */
  readonly droppedMessages: number;
  /** Message requests that failed (refused, timed out, connection error). */
  readonly failedRequests: number;
  /** Messages waiting for the next request. */
  readonly queuedMessages: number;
  readonly snapshotsSent: number;
  readonly snapshotsFailed: number;
  /** False from a failed request until the next successful one. */
  readonly reachable: boolean;
}

export interface TransportStats {
  readonly peers: ReadonlyMap<NodeId, PeerStats>;
  /** Messages addressed to a member this transport does not know (including itself). */
  readonly unknownPeerDrops: number;
}

/** The logging this layer needs; a pino or fastify logger fits. */
export interface TransportLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

const ignore = (): void => {};
export const SILENT_LOGGER: TransportLogger = Object.freeze({ debug: ignore, info: ignore, warn: ignore, error: ignore });

/** Calls `action` at most once per `intervalMs`; later calls within the interval are skipped. */
export class RateLimiter {
  private lastMs = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number,
  ) {}

  /** True when the caller may act now (and the next chance is one interval away). */
  tryAcquire(): boolean {
    const nowMs = this.now();
    if (nowMs - this.lastMs < this.intervalMs) return false;
    this.lastMs = nowMs;
    return true;
  }
}

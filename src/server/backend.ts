// What the client API needs from a member, in the API's own terms. The HTTP
// layer (src/server) speaks to this interface only; src/node implements it on
// top of the Raft loop and the MVCC store, and tests use an in-memory fake.
// Operating errors are thrown as CairnError subclasses (src/errors.ts) whose
// `code` is one of API.md's codes; everything else is a bug.

import type { Compare, KeyValue, TxnOp, TxnOpResult } from '../kv/kv-commands.js';

// The store's own shapes are the API's: one definition (src/kv/kv-commands.ts).
export type { Compare, CompareOp, CompareTarget, KeyValue, TxnOp } from '../kv/kv-commands.js';
export type TxnOpResponse = TxnOpResult;

/** A response header: the store revision the answer reflects, the Raft term, this member's id (16 hex digits). */
export interface ResponseHeader {
  readonly revision: number;
  readonly raftTerm: number;
  readonly memberId: string;
}

export interface RangeRequest {
  readonly key: Uint8Array;
  /** All keys starting with `key` (an empty key with prefix lists everything). */
  readonly prefix: boolean;
  /** Read as of this revision (0 or absent = current). */
  readonly revision?: number;
  /** Most keys returned (0 or absent = no limit). */
  readonly limit?: number;
  readonly keysOnly?: boolean;
  readonly countOnly?: boolean;
  /** Answer from this member's state without a quorum round (may be stale). */
  readonly serializable?: boolean;
}

export interface RangeResponse {
  readonly header: ResponseHeader;
  readonly kvs: readonly KeyValue[];
  /** Number of keys in the range (ignoring limit). */
  readonly count: number;
  /** More keys exist past `limit`. */
  readonly more: boolean;
}

export interface PutRequest {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  readonly lease?: number;
  readonly prevKv?: boolean;
  /** Only if the key's version is this (0 = the key must not exist). */
  readonly ifVersion?: number;
  /** Only if the key's modRevision is this (0 = the key must not exist). */
  readonly ifModRevision?: number;
}

export interface PutResponse {
  readonly header: ResponseHeader;
  readonly prevKv?: KeyValue;
}

export interface DeleteRequest {
  readonly key: Uint8Array;
  readonly prefix?: boolean;
  readonly prevKv?: boolean;
  readonly ifModRevision?: number;
}

export interface DeleteResponse {
  readonly header: ResponseHeader;
  readonly deleted: number;
  readonly prevKvs?: readonly KeyValue[];
}

export interface TxnRequest {
  readonly compare: readonly Compare[];
  readonly success: readonly TxnOp[];
  readonly failure: readonly TxnOp[];
}

export interface TxnResponse {
  readonly header: ResponseHeader;
  readonly succeeded: boolean;
  readonly responses: readonly TxnOpResponse[];
}

export interface WatchRequest {
  readonly key: Uint8Array;
  readonly prefix: boolean;
  /** First revision to deliver (0 or absent = changes after now). */
  readonly startRevision?: number;
  readonly prevKv?: boolean;
}

export interface WatchEvent {
  readonly type: 'put' | 'delete';
  readonly kv: KeyValue;
  readonly prevKv?: KeyValue;
}

/** What a watch delivers, in order. */
export type WatchNotice =
  /** All events of one revision, together. */
  | { readonly kind: 'events'; readonly revision: number; readonly events: readonly WatchEvent[] }
  | { readonly kind: 'progress'; readonly revision: number }
  /** The history asked for is gone; the watch has ended. */
  | { readonly kind: 'compacted'; readonly compactRevision: number }
  /** The watch ended for another reason (member shutting down, watcher too slow...). */
  | { readonly kind: 'closed'; readonly reason: string };

/**
 * A watch's notices as an async iterator with backpressure: the member buffers a
 * bounded number of notices per watcher and catches a slow one up from history.
 * Ending the iteration (return()) or the signal cancels the watch.
 */
export type WatchStream = AsyncIterable<WatchNotice>;

export interface LeaseGrantResponse {
  readonly header: ResponseHeader;
  readonly id: number;
  readonly ttl: number;
}

export interface LeaseInfo {
  readonly id: number;
  /** Seconds left (-1 when the lease does not exist). */
  readonly ttl: number;
  readonly grantedTtl: number;
  readonly keys: readonly Uint8Array[];
}

export interface Member {
  /** 16 hex digits. */
  readonly id: string;
  readonly name: string;
  readonly peerUrls: readonly string[];
  readonly clientUrls: readonly string[];
  readonly isLearner: boolean;
}

export interface Status {
  readonly header: ResponseHeader;
  readonly memberId: string;
  readonly name: string;
  readonly leaderId: string | null;
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly revision: number;
  readonly compactRevision: number;
  readonly dbSizeBytes: number;
  readonly version: string;
  readonly isLearner: boolean;
}

/** Equal on members that applied the same history: compare members at one revision. */
export interface HashKvResponse {
  readonly header: ResponseHeader;
  readonly revision: number;
  readonly compactRevision: number;
  /** sha256 (hex) over the keys in order, each with value, createRevision, modRevision, version, lease. */
  readonly hash: string;
}

export interface Backend {
  range(request: RangeRequest, signal: AbortSignal): Promise<RangeResponse>;
  put(request: PutRequest, signal: AbortSignal): Promise<PutResponse>;
  delete(request: DeleteRequest, signal: AbortSignal): Promise<DeleteResponse>;
  txn(request: TxnRequest, signal: AbortSignal): Promise<TxnResponse>;
  compact(revision: number, signal: AbortSignal): Promise<{ readonly header: ResponseHeader }>;
  /** Throws Compacted synchronously-or-async only through the stream's first notice, never by rejecting. */
  watch(request: WatchRequest, signal: AbortSignal): WatchStream;
  /** Asks every watch of this member to send a progress notice now. */
  requestProgress(): void;

  leaseGrant(ttlSeconds: number, signal: AbortSignal): Promise<LeaseGrantResponse>;
  leaseKeepAlive(id: number, signal: AbortSignal): Promise<{ readonly header: ResponseHeader; readonly ttl: number }>;
  leaseInfo(id: number, signal: AbortSignal): Promise<LeaseInfo & { readonly header: ResponseHeader }>;
  leaseRevoke(id: number, signal: AbortSignal): Promise<{ readonly header: ResponseHeader }>;
  leases(signal: AbortSignal): Promise<{ readonly header: ResponseHeader; readonly leases: readonly { readonly id: number }[] }>;

  status(signal: AbortSignal): Promise<Status>;
  /** A digest of every live key at `revision` (0 = current), from this member's own state (like etcd's HashKV). */
  hashKv(revision: number, signal: AbortSignal): Promise<HashKvResponse>;
  members(signal: AbortSignal): Promise<{ readonly header: ResponseHeader; readonly members: readonly Member[] }>;
  addMember(
    peerUrls: readonly string[],
    learner: boolean,
    signal: AbortSignal,
  ): Promise<{ readonly header: ResponseHeader; readonly member: Member; readonly members: readonly Member[] }>;
  removeMember(id: string, signal: AbortSignal): Promise<{ readonly header: ResponseHeader; readonly members: readonly Member[] }>;
  promoteMember(id: string, signal: AbortSignal): Promise<{ readonly header: ResponseHeader; readonly members: readonly Member[] }>;
  transferLeader(targetId: string, signal: AbortSignal): Promise<{ readonly header: ResponseHeader }>;
  /** A consistent backup of the store as one stream of bytes. */
  snapshot(signal: AbortSignal): AsyncIterable<Uint8Array>;

  /** The process runs (always true while it answers). */
  live(): boolean;
  /** Has a leader and has applied what it knows to be committed (else /readyz answers 503 with the reason). */
  ready(): { readonly ok: true } | { readonly ok: false; readonly reason: string };
  /** Prometheus text exposition of this member's metrics. */
  metrics(): Promise<string>;
}

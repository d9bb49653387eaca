// The shapes of the client library's calls: options in, results out.

import type { ConnectionOptions } from 'node:tls';
import type { Bytes, KeyValue } from './key-value.js';

export interface ClientOptions {
  /** Client URLs of members (`http://host:2379`); any member answers any request. At least one. */
  readonly endpoints: readonly string[];
  /** Deadline of each call, retries and failover included. Default 5000 ms. */
  readonly timeoutMs?: number;
  /** Longest wait for a TCP (and TLS) connection to one endpoint before trying the next. Default 2000 ms (capped by timeoutMs). */
  readonly connectTimeoutMs?: number;
  /** Backoff after every endpoint failed once (calls) or after a lost watch stream: doubling from initialMs up to maxMs, with jitter. Default 50 and 1000 ms. */
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  /** A watch stream silent this long counts as lost and is resumed elsewhere (members send progress about every 10 s). Default 30000 ms. */
  readonly watchIdleTimeoutMs?: number;
  /** Largest response a read may return before it fails with TooLargeError. Default 256 MiB. */
  readonly maxResponseBytes?: number;
  /** Kept-alive connections per endpoint for calls (watches and snapshots have their own). Default 16. */
  readonly connectionsPerEndpoint?: number;
  /**
   * TLS for https endpoints (undici connect options): `ca` (PEM) to trust instead of
   * the system CAs, and `cert` and `key` (PEM) when the members require a client
   * certificate (`--client-cert-auth`). Other node:tls options (servername,
   * rejectUnauthorized...) pass through. Default none: system CAs, no certificate.
   */
  readonly tls?: ConnectionOptions;
  /** Headers sent with every request (for example Authorization). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Options every call takes. */
export interface CallOptions {
  /** Ends the call; it then rejects with AbortedError (name `AbortError`). */
  readonly signal?: AbortSignal;
  /** This call's deadline instead of the client's timeoutMs. */
  readonly timeoutMs?: number;
}

/** What every response says about where it comes from. */
export interface ResponseHeader {
  /** The store revision the answer reflects. */
  readonly revision: number;
  readonly raftTerm: number;
  /** The member that answered (16 hex digits). */
  readonly memberId: string;
}

export interface GetOptions extends CallOptions {
  /** Read as of this revision (0 = current). */
  readonly revision?: number;
  /** Answer from the member's own state without a quorum round: faster, may be stale. */
  readonly serializable?: boolean;
}

export interface RangeOptions extends GetOptions {
  /** Most keys returned (0 = no limit); `more` says whether there were more. */
  readonly limit?: number;
  /** Keys and metadata without values. */
  readonly keysOnly?: boolean;
  /** Only `count`, no key-values. */
  readonly countOnly?: boolean;
}

export interface RangeResult {
  readonly header: ResponseHeader;
  readonly kvs: readonly KeyValue[];
  /** Number of keys in the range (ignoring limit). */
  readonly count: number;
  /** More keys exist past `limit`. */
  readonly more: boolean;
}

export interface PutOptions extends CallOptions {
  /** Attach the key to this lease (deleted when it expires). */
  readonly lease?: number;
  /** Return the key-value as it was before. */
  readonly prevKv?: boolean;
  /** Only if the key's version is this (0 = the key must not exist); otherwise CompareFailedError. */
  readonly ifVersion?: number;
  /** Only if the key's modRevision is this (0 = the key must not exist); otherwise CompareFailedError. */
  readonly ifModRevision?: number;
}

export interface PutResult {
  readonly header: ResponseHeader;
  readonly prevKv?: KeyValue;
}

export interface DeleteOptions extends CallOptions {
  /** Delete every key starting with `key` (an empty key with prefix: everything). */
  readonly prefix?: boolean;
  readonly prevKv?: boolean;
  /** Only if the key's modRevision is this; otherwise CompareFailedError. */
  readonly ifModRevision?: number;
}

export interface DeleteResult {
  readonly header: ResponseHeader;
  readonly deleted: number;
  readonly prevKvs?: readonly KeyValue[];
}

export type CompareTarget = 'value' | 'version' | 'createRevision' | 'modRevision' | 'lease';
export type CompareOp = '=' | '!=' | '<' | '>';

export interface Compare {
  readonly key: Bytes;
  readonly target: CompareTarget;
  readonly op: CompareOp;
  /** Bytes for target `value`, a number for the others. */
  readonly value: Bytes | number;
}

export type TxnOp =
  | { readonly get: { readonly key: Bytes; readonly prefix?: boolean } }
  | { readonly put: { readonly key: Bytes; readonly value: Bytes; readonly lease?: number } }
  | { readonly delete: { readonly key: Bytes; readonly prefix?: boolean } };

export interface Txn {
  readonly compare?: readonly Compare[];
  readonly success?: readonly TxnOp[];
  readonly failure?: readonly TxnOp[];
}

export type TxnOpResult =
  | { readonly get: { readonly kvs: readonly KeyValue[]; readonly count: number } }
  | { readonly put: { readonly prevKv?: KeyValue } }
  | { readonly delete: { readonly deleted: number } };

export interface TxnResult {
  readonly header: ResponseHeader;
  /** Whether every compare held (and `success` ran) or not (`failure` ran). */
  readonly succeeded: boolean;
  readonly responses: readonly TxnOpResult[];
}

export interface LeaseGrant {
  readonly header: ResponseHeader;
  readonly id: number;
  /** Seconds. */
  readonly ttl: number;
}

export interface LeaseInfo {
  readonly header: ResponseHeader;
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

export interface WatchOptions {
  /** Watch every key starting with `key` (an empty key with prefix: everything). */
  readonly prefix?: boolean;
  /**
   * First revision to deliver. Absent or 0: changes after the store's revision
   * when iteration starts (read linearizably, so a reconnect before the first
   * event still misses nothing).
   */
  readonly startRevision?: number;
  /** Events carry the key-value as it was before. */
  readonly prevKv?: boolean;
  /** Ends the watch: the iteration finishes (no error). */
  readonly signal?: AbortSignal;
}

export interface WatchEvent {
  readonly type: 'put' | 'delete';
  /** For a delete: the key, with modRevision the deleting revision and an empty value. */
  readonly kv: KeyValue;
  readonly prevKv?: KeyValue;
}

/**
 * What a watch yields. Normally all events of one revision (one transaction),
 * `progress: false`. A progress notice (`progress: true`, no events) says every
 * change up to `revision` has been delivered.
 */
export interface WatchBatch {
  readonly revision: number;
  readonly events: readonly WatchEvent[];
  readonly progress: boolean;
}

// The client library: API.md's HTTP API as promises, over every endpoint given.
//
// Reads and calls that are safe to repeat are retried across endpoints until
// their deadline; writes are retried only when they certainly reached no server
// (or one answered 503: nothing happened); otherwise a write whose outcome is
// unknown fails with TimeoutError (see failover.ts). Watches resume by themselves
// (see watch.ts). Responses come as msgpack (see codec.ts).

import { Agent, type Dispatcher } from 'undici';
import { decodeObject, encodeMsgpack, MSGPACK } from './codec.js';
import { AbortedError, CairnClientError, ClientClosedError, ConnectionError, InternalError, InvalidArgumentError } from './errors.js';
import { EndpointRing, Requester, type BackoffOptions } from './failover.js';
import { parseEndpoint, type HttpMethod, type HttpRequest } from './http.js';
import { encodeKeyPath, toBytes, type Bytes, type KeyValue } from './key-value.js';
import { TxnBuilder } from './txn-builder.js';
import { keepLeaseAliveInBackground, type LeaseKeepAlive, type LeaseKeepAliveOptions } from './lease-keep-alive.js';
import * as decode from './responses.js';
import type {
  CallOptions,
  ClientOptions,
  Compare,
  DeleteOptions,
  DeleteResult,
  GetOptions,
  LeaseGrant,
  LeaseInfo,
  Member,
  PutOptions,
  PutResult,
  RangeOptions,
  RangeResult,
  ResponseHeader,
  Status,
  Txn,
  TxnOp,
  TxnResult,
  WatchBatch,
  WatchOptions,
} from './types.js';
import { watchBatches, type WatchContext } from './watch.js';

type Query = Record<string, string | number | boolean | undefined>;
type Raw = Record<string, unknown>;

interface Settings {
  readonly timeoutMs: number;
  readonly watchIdleTimeoutMs: number;
  readonly backoff: BackoffOptions;
  readonly headers: Readonly<Record<string, string>>;
}

function positive(name: string, v: number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isFinite(v) || v <= 0) throw new TypeError(`${name} must be a positive number of milliseconds (got ${v})`);
  return v;
}

function queryString(query: Query): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined || value === false) continue;
    params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

function keyBytes(key: Bytes, allowEmpty: boolean): Uint8Array {
  const bytes = toBytes(key);
  if (bytes.length === 0 && !allowEmpty) throw new InvalidArgumentError('key must not be empty (use a prefix call to address every key)');
  return bytes;
}

function count(name: string, v: number | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isSafeInteger(v) || v < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer (got ${v})`);
  return v;
}

function wireOp(op: TxnOp): unknown {
  if ('get' in op) return { get: { key: keyBytes(op.get.key, false), prefix: op.get.prefix === true } };
  if ('put' in op) return { put: { key: keyBytes(op.put.key, false), value: toBytes(op.put.value), ...(op.put.lease ? { lease: op.put.lease } : {}) } };
  return { delete: { key: keyBytes(op.delete.key, false), prefix: op.delete.prefix === true } };
}

function wireCompare(c: Compare): unknown {
  const numeric = c.target !== 'value';
  if (numeric !== (typeof c.value === 'number')) throw new InvalidArgumentError(`compare on ${c.target} needs ${numeric ? 'a number' : 'bytes or a string'} as its value`);
  return { key: keyBytes(c.key, false), target: c.target, op: c.op, value: typeof c.value === 'number' ? c.value : toBytes(c.value) };
}

/** A member id as the API spells it: 16 hex digits. */
function memberId(id: string): string {
  if (!/^[0-9a-f]{16}$/.test(id)) throw new InvalidArgumentError(`member id must be 16 lowercase hex digits (got ${JSON.stringify(id)})`);
  return id;
}

function leaseId(id: number): number {
  if (!Number.isSafeInteger(id) || id <= 0) throw new InvalidArgumentError(`lease id must be a positive integer (got ${id})`);
  return id;
}

export class Client {
  readonly #settings: Settings;
  readonly #ring: EndpointRing;
  readonly #unaryAgent: Agent;
  /** Watches and snapshots hold a connection each for long; they do not take the calls' connections. */
  readonly #streamAgent: Agent;
  readonly #requester: Requester;
  readonly #closing = new AbortController();
  #closed: Promise<void> | undefined;

  constructor(options: ClientOptions) {
    if (!options || !Array.isArray(options.endpoints) || options.endpoints.length === 0) throw new TypeError('endpoints: at least one URL is needed');
    const timeoutMs = positive('timeoutMs', options.timeoutMs, 5000);
    const connectTimeoutMs = Math.min(positive('connectTimeoutMs', options.connectTimeoutMs, 2000), timeoutMs);
    const backoff = { initialMs: positive('backoff.initialMs', options.backoff?.initialMs, 50), maxMs: positive('backoff.maxMs', options.backoff?.maxMs, 1000) };
    this.#settings = Object.freeze({
      timeoutMs,
      watchIdleTimeoutMs: positive('watchIdleTimeoutMs', options.watchIdleTimeoutMs, 30_000),
      backoff: Object.freeze(backoff),
      headers: Object.freeze({ ...options.headers }),
    });
    this.#ring = new EndpointRing(options.endpoints.map(parseEndpoint));
    const connect = { ...options.tls, timeout: connectTimeoutMs };
    // Idle connections are closed by the client well before a member would (fastify keeps them 72 s),
    // so a write rarely goes out on a connection the member is closing (its outcome would be unknown).
    this.#unaryAgent = new Agent({ connect, connections: options.connectionsPerEndpoint ?? 16, keepAliveTimeout: 30_000 });
    this.#streamAgent = new Agent({ connect, keepAliveTimeout: 30_000 });
    this.#requester = new Requester(this.#ring, this.#unaryAgent, {
      backoff,
      maxResponseBytes: positive('maxResponseBytes', options.maxResponseBytes, 256 * 1024 * 1024),
      isClosed: () => this.#closing.signal.aborted,
    });
  }

  /** One call: failover, then the decoded object body. */
  async #call<T>(method: HttpMethod, path: string, options: CallOptions | undefined, idempotent: boolean, body: unknown, read: (raw: Raw) => T): Promise<T> {
    if (this.#closing.signal.aborted) throw new ClientClosedError();
    const headers: Record<string, string> = { ...this.#settings.headers, accept: MSGPACK };
    let bytes: Uint8Array | undefined;
    if (body instanceof Uint8Array) {
      bytes = body;
      headers['content-type'] = 'application/octet-stream';
    } else if (body !== undefined) {
      bytes = encodeMsgpack(body);
      headers['content-type'] = MSGPACK;
    }
    const request: HttpRequest = { method, path, headers, ...(bytes ? { body: bytes } : {}) };
    const { response, endpoint } = await this.#requester.unary(request, {
      idempotent,
      timeoutMs: positive('timeoutMs', options?.timeoutMs, this.#settings.timeoutMs),
      signal: options?.signal,
    });
    const raw = decodeObject(response, endpoint.url);
    try {
      return read(raw);
    } catch (error) {
      throw new InternalError(`malformed response from ${endpoint.url}: ${(error as Error).message}`, undefined, { status: response.status, cause: error });
    }
  }

  /**
   * The key's current (or `revision`'s) key-value, or null when it does not
   * exist: a missing key is an answer, not a failure. (KeyNotFoundError stays
   * for what must exist: a lease, a member.)
   */
  async get(key: Bytes, options?: GetOptions): Promise<KeyValue | null> {
    const path = `/v1/kv/${encodeKeyPath(keyBytes(key, false))}${queryString({ revision: count('revision', options?.revision), serializable: options?.serializable })}`;
    try {
      return await this.#call('GET', path, options, true, undefined, decode.decodeGet);
    } catch (error) {
      if (error instanceof CairnClientError && error.code === 'KeyNotFound') return null;
      throw error;
    }
  }

  /** Every key starting with `prefix` (`''`: all keys), in key order. */
  async range(prefix: Bytes, options?: RangeOptions): Promise<RangeResult> {
    const query = {
      prefix: true,
      revision: count('revision', options?.revision),
      limit: count('limit', options?.limit),
      keysOnly: options?.keysOnly,
      countOnly: options?.countOnly,
      serializable: options?.serializable,
    };
    return this.#call('GET', `/v1/kv/${encodeKeyPath(keyBytes(prefix, true))}${queryString(query)}`, options, true, undefined, decode.decodeRange);
  }

  /** Sets the key's value. With ifVersion / ifModRevision it fails with CompareFailedError when the key is not as expected. */
  async put(key: Bytes, value: Bytes, options?: PutOptions): Promise<PutResult> {
    const query = {
      lease: options?.lease ? leaseId(options.lease) : undefined,
      prevKv: options?.prevKv,
      ifVersion: count('ifVersion', options?.ifVersion),
      ifModRevision: count('ifModRevision', options?.ifModRevision),
    };
    return this.#call('PUT', `/v1/kv/${encodeKeyPath(keyBytes(key, false))}${queryString(query)}`, options, false, toBytes(value), decode.decodePut);
  }

  /** Deletes the key (or, with prefix, every key starting with it). */
  async delete(key: Bytes, options?: DeleteOptions): Promise<DeleteResult> {
    const query = { prefix: options?.prefix, prevKv: options?.prevKv, ifModRevision: count('ifModRevision', options?.ifModRevision) };
    const bytes = keyBytes(key, options?.prefix === true);
    return this.#call('DELETE', `/v1/kv/${encodeKeyPath(bytes)}${queryString(query)}`, options, false, undefined, decode.decodeDelete);
  }

  /** If every compare holds, the success ops, else the failure ops: one revision either way. */
  /** A fluent transaction: client.transaction().if(...).then(...).else(...).commit() (see txn-builder.ts). */
  transaction(): TxnBuilder {
    return new TxnBuilder((txn, options) => this.txn(txn, options));
  }

  async txn(txn: Txn, options?: CallOptions): Promise<TxnResult> {
    const body = { compare: (txn.compare ?? []).map(wireCompare), success: (txn.success ?? []).map(wireOp), failure: (txn.failure ?? []).map(wireOp) };
    // A txn of gets only changes nothing, so it may be retried like a read.
    const readOnly = [...(txn.success ?? []), ...(txn.failure ?? [])].every((op) => 'get' in op);
    return this.#call('POST', '/v1/txn', options, readOnly, body, decode.decodeTxn);
  }

  /** Drops the history below `revision`. */
  async compact(revision: number, options?: CallOptions): Promise<{ header: ResponseHeader }> {
    return this.#call('POST', '/v1/compact', options, false, { revision: count('revision', revision) }, (raw) => ({ header: decode.decodeHeader(raw) }));
  }

  async grantLease(ttlSeconds: number, options?: CallOptions): Promise<LeaseGrant> {
    return this.#call('POST', '/v1/leases', options, false, { ttl: count('ttlSeconds', ttlSeconds) }, decode.decodeLeaseGrant);
  }

  /** Restarts the lease's countdown; returns its TTL in seconds. Safe to repeat, so retried like a read. */
  async keepAlive(id: number, options?: CallOptions): Promise<{ header: ResponseHeader; ttl: number }> {
    return this.#call('POST', `/v1/leases/${leaseId(id)}/keepalive`, options, true, undefined, (raw) => ({
      header: decode.decodeHeader(raw),
      ttl: typeof raw.ttl === 'number' ? raw.ttl : -1,
    }));
  }

  /**
   * Keeps the lease alive until closed: a keep-alive every third of its TTL,
   * retried across endpoints. `done` says why it ended (see LeaseKeepAlive).
   */
  keepLeaseAlive(id: number, options: LeaseKeepAliveOptions = {}): LeaseKeepAlive {
    if (this.#closing.signal.aborted) throw new ClientClosedError();
    leaseId(id);
    const signal = options.signal ? AbortSignal.any([options.signal, this.#closing.signal]) : this.#closing.signal;
    return keepLeaseAliveInBackground(id, (stop) => this.keepAlive(id, { signal: stop }), { ...options, signal });
  }

  /** Revokes the lease, deleting its keys. */
  async revokeLease(id: number, options?: CallOptions): Promise<{ header: ResponseHeader }> {
    return this.#call('DELETE', `/v1/leases/${leaseId(id)}`, options, false, undefined, (raw) => ({ header: decode.decodeHeader(raw) }));
  }

  async leaseInfo(id: number, options?: CallOptions): Promise<LeaseInfo> {
    return this.#call('GET', `/v1/leases/${leaseId(id)}`, options, true, undefined, decode.decodeLeaseInfo);
  }

  /** Ids of every lease. */
  async leases(options?: CallOptions): Promise<number[]> {
    return this.#call('GET', '/v1/leases', options, true, undefined, decode.decodeLeaseIds);
  }

  /** The answering member's status (whichever endpoint is current). */
  async status(options?: CallOptions): Promise<Status> {
    return this.#call('GET', '/v1/status', options, true, undefined, decode.decodeStatus);
  }

  async members(options?: CallOptions): Promise<Member[]> {
    return this.#call('GET', '/v1/members', options, true, undefined, decode.decodeMembers);
  }

  /** Adds a member (a learner with `learner: true`); returns it and the new member list. */
  async addMember(peerUrls: readonly string[], options?: CallOptions & { readonly learner?: boolean }): Promise<{ member: Member; members: Member[] }> {
    return this.#call('POST', '/v1/members', options, false, { peerUrls: [...peerUrls], learner: options?.learner === true }, (raw) => ({
      member: decode.decodeMember(raw.member),
      members: decode.decodeMembers(raw),
    }));
  }

  async removeMember(id: string, options?: CallOptions): Promise<Member[]> {
    return this.#call('DELETE', `/v1/members/${memberId(id)}`, options, false, undefined, decode.decodeMembers);
  }

  /** Makes a learner a voting member. */
  async promoteMember(id: string, options?: CallOptions): Promise<Member[]> {
    return this.#call('POST', `/v1/members/${memberId(id)}/promote`, options, false, undefined, decode.decodeMembers);
  }

  /** Asks the leader to hand leadership to `targetId`. */
  async moveLeader(targetId: string, options?: CallOptions): Promise<{ header: ResponseHeader }> {
    return this.#call('POST', '/v1/leader/transfer', options, false, { targetId: memberId(targetId) }, (raw) => ({ header: decode.decodeHeader(raw) }));
  }

  /**
   * A consistent backup of the store, streamed. Connecting fails over within the
   * deadline; once bytes flow, a broken stream throws (a backup cannot resume),
   * as does a silence longer than the deadline.
   */
  async *snapshot(options?: CallOptions): AsyncGenerator<Uint8Array, void, undefined> {
    if (this.#closing.signal.aborted) throw new ClientClosedError();
    const signal = options?.signal ? AbortSignal.any([options.signal, this.#closing.signal]) : this.#closing.signal;
    const timeoutMs = positive('timeoutMs', options?.timeoutMs, this.#settings.timeoutMs);
    const { response, endpoint } = await this.#requester.stream(
      { method: 'GET', path: '/v1/snapshot', headers: { ...this.#settings.headers } },
      { timeoutMs, bodyIdleMs: timeoutMs, signal },
    );
    let bytes = 0;
    try {
      for await (const chunk of response.body) {
        bytes += chunk.length;
        yield new Uint8Array(chunk);
      }
    } catch (error) {
      if (options?.signal?.aborted) throw new AbortedError('the snapshot was aborted', false, options.signal.reason);
      if (this.#closing.signal.aborted) throw new ClientClosedError();
      throw new ConnectionError(`the snapshot stream from ${endpoint.url} broke after ${bytes} bytes`, [{ endpoint: endpoint.url, error }]);
    } finally {
      response.release();
    }
  }

  /**
   * Every change of the key (or, with prefix, of every key starting with it),
   * as batches of one revision each, in revision order, exactly once: the
   * watch resumes by itself after a lost connection or a dead member. It ends
   * when `signal` fires, when the loop breaks, or when the client closes; it
   * throws CompactedError when the history it needs is gone. One iteration per
   * call. Progress notices come as batches with `progress: true` and no events.
   */
  watch(key: Bytes, options: WatchOptions = {}): AsyncIterable<WatchBatch> {
    if (this.#closing.signal.aborted) throw new ClientClosedError();
    const bytes = keyBytes(key, options.prefix === true);
    if (options.startRevision !== undefined) count('startRevision', options.startRevision);
    return watchBatches(this.#watchContext(), bytes, options, this.#closing.signal);
  }

  #watchContext(): WatchContext {
    return {
      ring: this.#ring,
      dispatcher: this.#streamAgent as Dispatcher,
      headers: this.#settings.headers,
      timeoutMs: this.#settings.timeoutMs,
      idleTimeoutMs: this.#settings.watchIdleTimeoutMs,
      backoff: this.#settings.backoff,
      currentRevision: async (key, prefix, signal) => {
        const path = `/v1/kv/${encodeKeyPath(key)}${queryString({ prefix, countOnly: true })}`;
        return this.#call('GET', path, { signal }, true, undefined, (raw) => decode.decodeHeader(raw).revision);
      },
    };
  }

  /** Ends every watch and snapshot, lets calls in flight finish (each within its deadline), and releases every connection. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing.abort(new ClientClosedError());
      await Promise.all([this.#unaryAgent.close(), this.#streamAgent.close()]);
    })();
    return this.#closed;
  }
}

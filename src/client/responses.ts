// Response objects (decoded msgpack or JSON) to the library's result types.
// Each decoder checks the shape it relies on and throws TypeError otherwise;
// the caller turns that into InternalError (the server's failure, not the user's).

import { decodeKeyValue, wireBytes, wireNumber, type KeyValue } from './key-value.js';
import type {
  DeleteResult,
  LeaseGrant,
  LeaseInfo,
  Member,
  PutResult,
  RangeResult,
  ResponseHeader,
  Status,
  TxnOpResult,
  TxnResult,
  WatchEvent,
} from './types.js';

type Raw = Record<string, unknown>;

function object(v: unknown, what: string): Raw {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TypeError(`${what} is not an object`);
  return v as Raw;
}

function list(v: unknown, what: string): unknown[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new TypeError(`${what} is not a list`);
  return v;
}

function text(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new TypeError(`${what} is not a string`);
  return v;
}

function flag(v: unknown): boolean {
  return v === true;
}

function optionalKv(v: unknown): KeyValue | undefined {
  return v === undefined || v === null ? undefined : decodeKeyValue(v);
}

export function decodeHeader(raw: Raw): ResponseHeader {
  const h = object(raw.header, 'header');
  return { revision: wireNumber(h.revision, 'header.revision'), raftTerm: wireNumber(h.raftTerm, 'header.raftTerm'), memberId: text(h.memberId, 'header.memberId') };
}

/** `{header, kv}` of a one-key GET. */
export function decodeGet(raw: Raw): KeyValue {
  return decodeKeyValue(raw.kv);
}

export function decodeRange(raw: Raw): RangeResult {
  const kvs = list(raw.kvs, 'kvs').map(decodeKeyValue);
  return { header: decodeHeader(raw), kvs, count: raw.count === undefined ? kvs.length : wireNumber(raw.count, 'count'), more: flag(raw.more) };
}

export function decodePut(raw: Raw): PutResult {
  const prevKv = optionalKv(raw.prevKv);
  return { header: decodeHeader(raw), ...(prevKv ? { prevKv } : {}) };
}

export function decodeDelete(raw: Raw): DeleteResult {
  const base = { header: decodeHeader(raw), deleted: wireNumber(raw.deleted, 'deleted') };
  return raw.prevKvs === undefined ? base : { ...base, prevKvs: list(raw.prevKvs, 'prevKvs').map(decodeKeyValue) };
}

function decodeTxnOpResult(v: unknown, index: number): TxnOpResult {
  const r = object(v, `responses[${index}]`);
  if (r.get !== undefined) {
    const g = object(r.get, `responses[${index}].get`);
    const kvs = list(g.kvs, `responses[${index}].get.kvs`).map(decodeKeyValue);
    return { get: { kvs, count: g.count === undefined ? kvs.length : wireNumber(g.count, 'count') } };
  }
  if (r.put !== undefined) {
    const prevKv = optionalKv(object(r.put, `responses[${index}].put`).prevKv);
    return { put: prevKv ? { prevKv } : {} };
  }
  if (r.delete !== undefined) return { delete: { deleted: wireNumber(object(r.delete, `responses[${index}].delete`).deleted, 'deleted') } };
  throw new TypeError(`responses[${index}] is not a get, put or delete result`);
}

export function decodeTxn(raw: Raw): TxnResult {
  return { header: decodeHeader(raw), succeeded: flag(raw.succeeded), responses: list(raw.responses, 'responses').map(decodeTxnOpResult) };
}

export function decodeLeaseGrant(raw: Raw): LeaseGrant {
  return { header: decodeHeader(raw), id: wireNumber(raw.id, 'id'), ttl: wireNumber(raw.ttl, 'ttl') };
}

export function decodeLeaseInfo(raw: Raw): LeaseInfo {
  return {
    header: decodeHeader(raw),
    id: wireNumber(raw.id, 'id'),
    ttl: wireNumber(raw.ttl, 'ttl'),
    grantedTtl: wireNumber(raw.grantedTtl, 'grantedTtl'),
    // The server sends lease keys as text; raw bytes are taken too.
    keys: list(raw.keys, 'keys').map((k, i) => wireBytes(k, false, `keys[${i}]`)),
  };
}

export function decodeLeaseIds(raw: Raw): number[] {
  return list(raw.leases, 'leases').map((l, i) => wireNumber(object(l, `leases[${i}]`).id, `leases[${i}].id`));
}

function strings(v: unknown, what: string): string[] {
  return list(v, what).map((s, i) => text(s, `${what}[${i}]`));
}

export function decodeMember(v: unknown): Member {
  const m = object(v, 'member');
  return {
    id: text(m.id, 'member.id'),
    name: typeof m.name === 'string' ? m.name : '',
    peerUrls: strings(m.peerUrls, 'member.peerUrls'),
    clientUrls: strings(m.clientUrls, 'member.clientUrls'),
    isLearner: flag(m.isLearner),
  };
}

export function decodeMembers(raw: Raw): Member[] {
  return list(raw.members, 'members').map(decodeMember);
}

export function decodeStatus(raw: Raw): Status {
  return {
    header: decodeHeader(raw),
    memberId: text(raw.memberId, 'memberId'),
    name: typeof raw.name === 'string' ? raw.name : '',
    leaderId: typeof raw.leaderId === 'string' ? raw.leaderId : null,
    term: wireNumber(raw.term, 'term'),
    commitIndex: wireNumber(raw.commitIndex, 'commitIndex'),
    appliedIndex: wireNumber(raw.appliedIndex, 'appliedIndex'),
    revision: wireNumber(raw.revision, 'revision'),
    compactRevision: wireNumber(raw.compactRevision, 'compactRevision'),
    dbSizeBytes: wireNumber(raw.dbSizeBytes, 'dbSizeBytes'),
    version: typeof raw.version === 'string' ? raw.version : '',
    isLearner: flag(raw.isLearner),
  };
}

/** The JSON `data` of a watch event (`{kv, prevKv?}`). */
export function decodeWatchEvent(type: 'put' | 'delete', data: string): WatchEvent {
  const raw = object(JSON.parse(data) as unknown, 'watch event');
  const prevKv = optionalKv(raw.prevKv);
  return { type, kv: decodeKeyValue(raw.kv), ...(prevKv ? { prevKv } : {}) };
}

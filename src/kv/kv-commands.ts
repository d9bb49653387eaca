import { Packr } from 'msgpackr';

// The write commands that travel in Raft log entries, and their results. Keys and
// values are bytes. Decoding validates every field: a malformed entry must never
// reach apply as a TypeError.

export type CompareTarget = 'value' | 'version' | 'createRevision' | 'modRevision' | 'lease';
export type CompareOp = '=' | '!=' | '<' | '>';

export interface Compare {
  readonly key: Uint8Array;
  readonly target: CompareTarget;
  readonly op: CompareOp;
  readonly value: Uint8Array | number;
}

export type TxnOp =
  | { readonly get: { readonly key: Uint8Array; readonly prefix?: boolean } }
  | { readonly put: { readonly key: Uint8Array; readonly value: Uint8Array; readonly lease?: number } }
  | { readonly delete: { readonly key: Uint8Array; readonly prefix?: boolean } };

export type KvCommand =
  | {
      readonly op: 'put';
      readonly key: Uint8Array;
      readonly value: Uint8Array;
      readonly lease?: number;
      readonly prevKv?: boolean;
      readonly ifVersion?: number;
      readonly ifModRevision?: number;
    }
  | { readonly op: 'delete'; readonly key: Uint8Array; readonly prefix?: boolean; readonly prevKv?: boolean; readonly ifModRevision?: number }
  | { readonly op: 'txn'; readonly compare: readonly Compare[]; readonly success: readonly TxnOp[]; readonly failure: readonly TxnOp[] }
  | { readonly op: 'compact'; readonly revision: number }
  | { readonly op: 'leaseGrant'; readonly id: number; readonly ttlSeconds: number }
  | { readonly op: 'leaseRevoke'; readonly id: number }
  /** Replicated so that every member (whichever leads next) restarts the lease's deadline. */
  | { readonly op: 'leaseKeepAlive'; readonly id: number };

export interface KeyValue {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
  readonly lease: number;
}

export type TxnOpResult =
  | { readonly get: { readonly kvs: readonly KeyValue[]; readonly count: number } }
  | { readonly put: { readonly prevKv?: KeyValue } }
  | { readonly delete: { readonly deleted: number } };

/** An operating error decided by apply (deterministically, so every member agrees). */
export interface KvFailure {
  readonly error: 'CompareFailed' | 'Compacted' | 'InvalidArgument' | 'KeyNotFound';
  readonly message: string;
  readonly revision: number;
  readonly kv?: KeyValue;
  readonly compactRevision?: number;
}

export type KvResult =
  | { readonly op: 'put'; readonly revision: number; readonly prevKv?: KeyValue }
  | { readonly op: 'delete'; readonly revision: number; readonly deleted: number; readonly prevKvs?: readonly KeyValue[] }
  | { readonly op: 'txn'; readonly revision: number; readonly succeeded: boolean; readonly responses: readonly TxnOpResult[] }
  | { readonly op: 'compact'; readonly revision: number }
  | { readonly op: 'leaseGrant'; readonly revision: number; readonly id: number; readonly ttlSeconds: number }
  | { readonly op: 'leaseRevoke'; readonly revision: number }
  | { readonly op: 'leaseKeepAlive'; readonly revision: number; readonly id: number; readonly ttlSeconds: number }
  | KvFailure;

export function isFailure(r: KvResult): r is KvFailure {
  return 'error' in r;
}

const packr = new Packr({ useRecords: false });

export function encodeCommand(command: KvCommand): Uint8Array {
  return packr.pack(command);
}

/** The entry's bytes are not a command this version understands. */
export class MalformedCommandError extends Error {
  override readonly name = 'MalformedCommandError';
}

function fail(what: string): never {
  throw new MalformedCommandError(`malformed command: ${what}`);
}

function bytes(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) fail(`${what} must be bytes`);
  return v;
}

function count(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(`${what} must be a non-negative integer`);
  return v;
}

function optionalCount(v: unknown, what: string): number | undefined {
  return v === undefined || v === null ? undefined : count(v, what);
}

function flag(v: unknown): boolean | undefined {
  return v === undefined || v === null ? undefined : v === true;
}

const TARGETS: ReadonlySet<string> = new Set(['value', 'version', 'createRevision', 'modRevision', 'lease']);
const OPS: ReadonlySet<string> = new Set(['=', '!=', '<', '>']);

function decodeCompare(raw: unknown): Compare {
  const c = raw as Record<string, unknown>;
  if (typeof c !== 'object' || c === null) fail('compare');
  if (typeof c.target !== 'string' || !TARGETS.has(c.target)) fail('compare target');
  if (typeof c.op !== 'string' || !OPS.has(c.op)) fail('compare op');
  const value = c.target === 'value' ? bytes(c.value, 'compare value') : count(c.value, 'compare value');
  return { key: bytes(c.key, 'compare key'), target: c.target as CompareTarget, op: c.op as CompareOp, value };
}

function decodeTxnOp(raw: unknown): TxnOp {
  const o = raw as Record<string, Record<string, unknown> | undefined>;
  if (typeof o !== 'object' || o === null) fail('txn op');
  if (o.get) return { get: { key: bytes(o.get.key, 'get key'), prefix: flag(o.get.prefix) } };
  if (o.put) {
    return { put: { key: bytes(o.put.key, 'put key'), value: bytes(o.put.value, 'put value'), lease: optionalCount(o.put.lease, 'put lease') } };
  }
  if (o.delete) return { delete: { key: bytes(o.delete.key, 'delete key'), prefix: flag(o.delete.prefix) } };
  return fail('txn op must be get, put or delete');
}

/** Decodes and validates a command; throws MalformedCommandError (never anything else) when it is not one. */
export function decodeCommand(data: Uint8Array): KvCommand {
  let raw: Record<string, unknown>;
  try {
    raw = packr.unpack(data) as Record<string, unknown>;
  } catch {
    return fail('not msgpack');
  }
  if (typeof raw !== 'object' || raw === null) fail('not an object');
  switch (raw.op) {
    case 'put':
      return {
        op: 'put',
        key: bytes(raw.key, 'key'),
        value: bytes(raw.value, 'value'),
        lease: optionalCount(raw.lease, 'lease'),
        prevKv: flag(raw.prevKv),
        ifVersion: optionalCount(raw.ifVersion, 'ifVersion'),
        ifModRevision: optionalCount(raw.ifModRevision, 'ifModRevision'),
      };
    case 'delete':
      return { op: 'delete', key: bytes(raw.key, 'key'), prefix: flag(raw.prefix), prevKv: flag(raw.prevKv), ifModRevision: optionalCount(raw.ifModRevision, 'ifModRevision') };
    case 'txn': {
      const list = (v: unknown, what: string): unknown[] => (Array.isArray(v) ? v : fail(what));
      return {
        op: 'txn',
        compare: list(raw.compare, 'compare').map(decodeCompare),
        success: list(raw.success, 'success').map(decodeTxnOp),
        failure: list(raw.failure, 'failure').map(decodeTxnOp),
      };
    }
    case 'compact':
      return { op: 'compact', revision: count(raw.revision, 'revision') };
    case 'leaseGrant':
      return { op: 'leaseGrant', id: count(raw.id, 'id'), ttlSeconds: count(raw.ttlSeconds, 'ttlSeconds') };
    case 'leaseRevoke':
      return { op: 'leaseRevoke', id: count(raw.id, 'id') };
    case 'leaseKeepAlive':
      return { op: 'leaseKeepAlive', id: count(raw.id, 'id') };
    default:
      return fail(`unknown op ${JSON.stringify(raw.op)}`);
  }
}

/** The smallest key greater than every key starting with `prefix` (undefined: no upper bound). */
export function prefixEnd(prefix: Uint8Array): Uint8Array | undefined {
  const end = Uint8Array.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return undefined;
}

// The body of POST /v1/txn, checked field by field before the backend sees it:
// {"compare":[{key,target,op,value,encoding?}],"success":[op…],"failure":[op…]}
// where op is {"get":{key,prefix?}}, {"put":{key,value,lease?}} or
// {"delete":{key,prefix?}}, each object optionally with "encoding":"base64"
// (its key and value are then base64). msgpack bodies may carry raw bytes.

import { InvalidArgumentError, TooLargeError } from '../errors.js';
import type { Compare, CompareOp, CompareTarget, TxnOp, TxnRequest } from './backend.js';
import { base64Field, flagField, integerField, listField, objectWith, type Fields } from './body-fields.js';
import { bodyBytes } from './encoding.js';

export interface TxnLimits {
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  readonly maxTxnOps: number;
}

const TARGETS: readonly CompareTarget[] = ['value', 'version', 'createRevision', 'modRevision', 'lease'];
const OPS: readonly CompareOp[] = ['=', '!=', '<', '>'];

function keyField(o: Fields, what: string, limits: TxnLimits, allowEmpty: boolean): Uint8Array {
  const key = bodyBytes(o.key, base64Field(o.encoding, `${what}.encoding`), `${what}.key`);
  if (key.length > limits.maxKeyBytes) throw new TooLargeError(`${what}.key is ${key.length} bytes; the limit is ${limits.maxKeyBytes}`);
  if (key.length === 0 && !allowEmpty) throw new InvalidArgumentError(`${what}.key must not be empty`);
  return key;
}

function valueField(o: Fields, what: string, limits: TxnLimits): Uint8Array {
  const value = bodyBytes(o.value, base64Field(o.encoding, `${what}.encoding`), `${what}.value`);
  if (value.length > limits.maxValueBytes) throw new TooLargeError(`${what}.value is ${value.length} bytes; the limit is ${limits.maxValueBytes}`);
  return value;
}

function parseCompare(raw: unknown, what: string, limits: TxnLimits): Compare {
  const c = objectWith(raw, ['key', 'target', 'op', 'value', 'encoding'], what);
  if (!TARGETS.includes(c.target as CompareTarget)) throw new InvalidArgumentError(`${what}.target must be one of ${TARGETS.join(', ')}`);
  if (!OPS.includes(c.op as CompareOp)) throw new InvalidArgumentError(`${what}.op must be one of ${OPS.join(' ')}`);
  const target = c.target as CompareTarget;
  const key = keyField(c, what, limits, false);
  const value = target === 'value' ? valueField(c, what, limits) : integerField(c.value, `${what}.value`, 0);
  return { key, target, op: c.op as CompareOp, value };
}

function parseOp(raw: unknown, what: string, limits: TxnLimits): TxnOp {
  const o = objectWith(raw, ['get', 'put', 'delete'], what);
  const kinds = Object.keys(o).filter((name) => o[name] !== undefined);
  if (kinds.length !== 1) throw new InvalidArgumentError(`${what} must have exactly one of get, put, delete`);
  const kind = kinds[0];
  const where = `${what}.${kind}`;
  if (kind === 'put') {
    const p = objectWith(o.put, ['key', 'value', 'lease', 'encoding'], where);
    const lease = p.lease === undefined ? 0 : integerField(p.lease, `${where}.lease`, 0);
    return { put: { key: keyField(p, where, limits, false), value: valueField(p, where, limits), ...(lease > 0 ? { lease } : {}) } };
  }
  const r = objectWith(o[kind], ['key', 'prefix', 'encoding'], where);
  const prefix = flagField(r.prefix, `${where}.prefix`);
  const key = keyField(r, where, limits, prefix);
  return kind === 'get' ? { get: { key, prefix } } : { delete: { key, prefix } };
}

/** The txn of a decoded body; InvalidArgument (or TooLarge past a limit) naming the first bad field. */
export function parseTxnBody(body: unknown, limits: TxnLimits): TxnRequest {
  const b = objectWith(body, ['compare', 'success', 'failure'], 'the txn');
  const compare = listField(b.compare, 'compare', limits.maxTxnOps).map((c, i) => parseCompare(c, `compare[${i}]`, limits));
  const ops = (name: 'success' | 'failure'): TxnOp[] => listField(b[name], name, limits.maxTxnOps).map((op, i) => parseOp(op, `${name}[${i}]`, limits));
  return { compare, success: ops('success'), failure: ops('failure') };
}

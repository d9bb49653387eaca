// Transaction bodies for POST /v1/txn: valid ones (JSON-able objects with text keys) and
// hostile ones, each a valid body with exactly one ingredient that makes it invalid, so
// the answer it must get is known (400 InvalidArgument, or 413 TooLarge for sizes).

import fc from 'fast-check';
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false });

export type Expected = { readonly status: 400; readonly code: 'InvalidArgument' } | { readonly status: 413; readonly code: 'TooLarge' };
export const INVALID: Expected = { status: 400, code: 'InvalidArgument' };
export const TOO_LARGE: Expected = { status: 413, code: 'TooLarge' };

export interface HostileBody {
  readonly ingredient: string;
  readonly payload: Buffer;
  readonly contentType: string;
  readonly expect: Expected;
}

type Json = null | boolean | number | string | Json[] | { [name: string]: Json };
type JsonObject = { [name: string]: Json };

const TARGETS = ['value', 'version', 'createRevision', 'modRevision', 'lease'];
const OPS = ['=', '!=', '<', '>'];
const JSON_TYPES = ['application/json', 'application/json; charset=utf-8', 'text/plain', 'application/octet-stream'];

export const textKey: fc.Arbitrary<string> = fc.string({ unit: fc.constantFrom(...'abc/é%'), minLength: 1, maxLength: 6 });
const fieldName = (not: readonly string[]): fc.Arbitrary<string> => fc.stringMatching(/^[a-z][a-zA-Z0-9]{0,10}$/).filter((name) => !not.includes(name));

const validCompare: fc.Arbitrary<JsonObject> = fc.oneof(
  fc.record({ key: textKey, target: fc.constant('value'), op: fc.constantFrom(...OPS), value: fc.string({ maxLength: 4 }) }),
  fc.record({ key: textKey, target: fc.constantFrom(...TARGETS.slice(1)), op: fc.constantFrom(...OPS), value: fc.nat({ max: 50 }) }),
);

const validOp: fc.Arbitrary<JsonObject> = fc.oneof(
  fc.record({ get: fc.record({ key: textKey, prefix: fc.boolean() }, { requiredKeys: ['key'] }) }),
  fc.record({ put: fc.record({ key: textKey, value: fc.string({ maxLength: 6 }) }) }),
  fc.record({ delete: fc.record({ key: textKey, prefix: fc.boolean() }, { requiredKeys: ['key'] }) }),
);

export const validTxn: fc.Arbitrary<JsonObject> = fc.record(
  {
    compare: fc.array(validCompare, { maxLength: 2 }),
    success: fc.array(validOp, { maxLength: 3 }),
    failure: fc.array(validOp, { maxLength: 2 }),
  },
  { requiredKeys: [] },
);

/** Values that are none of: a string, bytes, absent. */
const notString: fc.Arbitrary<Json> = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.constant<Json>([]), fc.constant<Json>({ a: 1 }));
/** Values that are not a non-negative safe integer. */
const notCount: fc.Arbitrary<Json> = fc.oneof(
  fc.integer({ max: -1 }),
  fc.double({ min: 0.001, max: 1e6, noNaN: true }).filter((n) => !Number.isInteger(n)),
  fc.constantFrom(2 ** 53, 1e300),
  fc.string({ maxLength: 3 }),
  fc.boolean(),
  fc.constant(null),
);
const notBoolean: fc.Arbitrary<Json> = fc.oneof(fc.constantFrom('true', 'false', '', 1, 0), fc.constant(null), fc.constant<Json>([]));
const notBase64: fc.Arbitrary<string> = fc
  .tuple(fc.string({ unit: fc.constantFrom(...'abcXYZ09+/'), maxLength: 4 }), fc.constantFrom('!', '-', '_', ' ', '.', '*', 'é', '=a', '%'))
  .map(([good, bad]) => `${good}${bad}`);
const notObject: fc.Arbitrary<Json> = fc.oneof(fc.string({ maxLength: 3 }), fc.integer(), fc.constant(null), fc.constant<Json>([1]), fc.boolean());

/** A key field that cannot be used: not a string, empty, or past the key limit (which is 413). */
function badKey(maxKeyBytes: number): fc.Arbitrary<{ key: Json; expect: Expected }> {
  return fc.oneof(
    notString.map((key) => ({ key, expect: INVALID })),
    fc.constant({ key: '', expect: INVALID }),
    fc.integer({ min: maxKeyBytes + 1, max: maxKeyBytes + 200 }).map((n) => ({ key: 'k'.repeat(n), expect: TOO_LARGE })),
  );
}

type Bad = { readonly item: Json; readonly ingredient: string; readonly expect: Expected };

function badCompare(maxKeyBytes: number): fc.Arbitrary<Bad> {
  const bad = (ingredient: string, item: fc.Arbitrary<Json>): fc.Arbitrary<Bad> => item.map((i) => ({ item: i, ingredient, expect: INVALID }));
  return fc.oneof(
    bad('compare: not an object', notObject),
    bad('compare: unknown target', fc.tuple(validCompare, fc.oneof(fc.string({ maxLength: 8 }).filter((t) => !TARGETS.includes(t)), fc.constantFrom('Value', 'VERSION', 1, null))).map(([c, target]) => ({ ...c, target }))),
    bad('compare: unknown op', fc.tuple(validCompare, fc.oneof(fc.string({ maxLength: 3 }).filter((o) => !OPS.includes(o)), fc.constantFrom('==', '<=', 0))).map(([c, op]) => ({ ...c, op }))),
    bad('compare: numeric target, bad number', fc.tuple(validCompare.filter((c) => c.target !== 'value'), notCount).map(([c, value]) => ({ ...c, value }))),
    bad('compare: value target, not bytes', fc.tuple(validCompare.filter((c) => c.target === 'value'), notString).map(([c, value]) => ({ ...c, value }))),
    bad('compare: unknown field', fc.tuple(validCompare, fieldName(['key', 'target', 'op', 'value', 'encoding'])).map(([c, name]) => ({ ...c, [name]: 1 }))),
    bad('compare: unknown encoding', fc.tuple(validCompare, fc.oneof(fc.constantFrom('hex', 'utf8', 'BASE64', ''), fc.integer())).map(([c, encoding]) => ({ ...c, encoding }))),
    bad('compare: key not base64', fc.tuple(validCompare, notBase64).map(([c, key]) => ({ ...c, key, encoding: 'base64', ...(c.target === 'value' ? { value: '' } : {}) }))),
    fc.tuple(validCompare, badKey(maxKeyBytes)).map(([c, { key, expect }]) => ({ item: { ...c, key }, ingredient: 'compare: bad key', expect })),
  );
}

function badOp(maxKeyBytes: number): fc.Arbitrary<Bad> {
  const bad = (ingredient: string, item: fc.Arbitrary<Json>): fc.Arbitrary<Bad> => item.map((i) => ({ item: i, ingredient, expect: INVALID }));
  const kindOf = (op: JsonObject): string => Object.keys(op)[0];
  const inner = (op: JsonObject): JsonObject => op[kindOf(op)] as JsonObject;
  const withInner = (op: JsonObject, fields: JsonObject): JsonObject => ({ [kindOf(op)]: { ...inner(op), ...fields } });
  const getOrDelete = validOp.filter((op) => kindOf(op) !== 'put');
  const put = validOp.filter((op) => kindOf(op) === 'put');
  return fc.oneof(
    bad('op: not an object', notObject),
    bad('op: no operation', fc.constant({})),
    bad('op: two operations', fc.tuple(validOp, validOp).map(([a, b]) => ({ ...a, [kindOf(a) === 'get' ? 'put' : 'get']: inner(b) }))),
    bad('op: unknown operation', fc.tuple(fieldName(['get', 'put', 'delete']), validOp).map(([name, op]) => ({ [name]: inner(op) }))),
    bad('op: operation not an object', fc.tuple(validOp, notObject).map(([op, v]) => ({ [kindOf(op)]: v }))),
    bad('op: unknown field', fc.tuple(validOp, fieldName(['key', 'value', 'lease', 'prefix', 'encoding'])).map(([op, name]) => withInner(op, { [name]: true }))),
    bad('op: put value not bytes', fc.tuple(put, notString).map(([op, value]) => withInner(op, { value }))),
    bad('op: put lease not a count', fc.tuple(put, notCount).map(([op, lease]) => withInner(op, { lease }))),
    bad('op: prefix not a boolean', fc.tuple(getOrDelete, notBoolean).map(([op, prefix]) => withInner(op, { prefix }))),
    bad('op: unknown encoding', fc.tuple(validOp, fc.constantFrom('hex', 'utf8', 'base32', 7)).map(([op, encoding]) => withInner(op, { encoding }))),
    bad('op: key not base64', fc.tuple(validOp, notBase64).map(([op, key]) => withInner(op, { key, encoding: 'base64', ...(kindOf(op) === 'put' ? { value: '' } : {}) }))),
    fc.tuple(validOp, badKey(maxKeyBytes)).map(([op, { key, expect }]) => ({ item: withInner(op, { key }), ingredient: 'op: bad key', expect })),
  );
}

function insertAt(list: readonly Json[], at: number, item: Json): Json[] {
  const i = at % (list.length + 1);
  return [...list.slice(0, i), item, ...list.slice(i)];
}

/** A txn object with one invalid part. */
function badTxnObject(maxKeyBytes: number): fc.Arbitrary<{ body: Json; ingredient: string; expect: Expected }> {
  const lists = ['compare', 'success', 'failure'] as const;
  return fc.oneof(
    fc.tuple(validTxn, fieldName([...lists]), notObject).map(([txn, name, v]) => ({ body: { ...txn, [name]: v }, ingredient: 'txn: unknown field', expect: INVALID })),
    fc.tuple(validTxn, fc.constantFrom(...lists), fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.boolean(), fc.constant<Json>({ a: [] }))).map(([txn, list, v]) => ({
      body: { ...txn, [list]: v },
      ingredient: `txn: ${list} not a list`,
      expect: INVALID,
    })),
    fc.tuple(validTxn, badCompare(maxKeyBytes), fc.nat()).map(([txn, bad, at]) => ({ body: { ...txn, compare: insertAt((txn.compare as Json[]) ?? [], at, bad.item) }, ingredient: bad.ingredient, expect: bad.expect })),
    fc.tuple(validTxn, fc.constantFrom('success', 'failure'), badOp(maxKeyBytes), fc.nat()).map(([txn, list, bad, at]) => ({
      body: { ...txn, [list]: insertAt((txn[list] as Json[]) ?? [], at, bad.item) },
      ingredient: `${list}: ${bad.ingredient}`,
      expect: bad.expect,
    })),
    fc.tuple(validTxn, fc.constantFrom(...lists), fc.integer({ min: 129, max: 140 })).map(([txn, list, n]) => ({
      body: { ...txn, [list]: Array.from({ length: n }, (): Json => (list === 'compare' ? { key: 'a', target: 'version', op: '=', value: 0 } : { get: { key: 'a' } })) },
      ingredient: `txn: more than 128 ${list}`,
      expect: TOO_LARGE,
    })),
    fc.oneof(fc.constant([] as Json), fc.integer(), fc.string(), fc.boolean(), fc.constant(null)).map((body) => ({ body, ingredient: 'txn: not an object', expect: INVALID })),
  );
}

/** Bytes that cannot decode: a strict prefix of an encoding, or a value followed by more bytes. */
function brokenEncoding(encoded: Buffer, cut: number, trailing: Buffer, fallback: Buffer): { payload: Buffer; how: string } {
  if (trailing.length > 0 || encoded.length < 2) return { payload: Buffer.concat([encoded, trailing.length > 0 ? trailing : fallback]), how: 'trailing bytes' };
  // Every encoding here is self-delimiting, so any non-empty strict prefix is incomplete (an empty body means {}).
  return { payload: encoded.subarray(0, 1 + (cut % (encoded.length - 1))), how: 'truncated' };
}

const hugeHeaders: readonly number[][] = [
  [0xdd, 0x7f, 0xff, 0xff, 0xff], // array32
  [0xdf, 0x00, 0x10, 0x00, 0x00], // map32
  [0xdb, 0xff, 0xff, 0xff, 0xf0], // str32
  [0xc6, 0x40, 0x00, 0x00, 0x00], // bin32
  [0xdc, 0xff, 0xff], // array16
  [0x81, 0xa7, ...Buffer.from('success'), 0xdd, 0x00, 0x0f, 0xff, 0xff], // {success: array32 of a million}
];

/** Hostile txn bodies: one invalid ingredient each, as JSON or msgpack. */
export function hostileTxnBody(maxKeyBytes: number): fc.Arbitrary<HostileBody> {
  const jsonType = fc.constantFrom(...JSON_TYPES);
  const asJsonOrMsgpack = badTxnObject(maxKeyBytes).chain(({ body, ingredient, expect }) =>
    fc.oneof(
      jsonType.map((contentType) => ({ ingredient: `json ${ingredient}`, payload: Buffer.from(JSON.stringify(body)), contentType, expect })),
      fc.constant({ ingredient: `msgpack ${ingredient}`, payload: Buffer.from(packr.pack(body)), contentType: 'application/msgpack', expect }),
    ),
  );
  const undecodable = fc.tuple(validTxn, fc.nat(), fc.oneof(fc.constant(Buffer.alloc(0)), fc.uint8Array({ minLength: 1, maxLength: 3 }).map(Buffer.from))).chain(([txn, cut, trailing]) => {
    const json = Buffer.from(JSON.stringify(txn));
    const msgpack = Buffer.from(packr.pack(txn));
    // JSON allows trailing whitespace: what follows the text here never is.
    const jsonTrailing = trailing.length > 0 ? Buffer.from(['}', ']', ',', 'x', '{', '"'][trailing[0] % 6]) : trailing;
    return fc.oneof(
      jsonType.map((contentType) => {
        const broken = brokenEncoding(json, cut, jsonTrailing, Buffer.from('}'));
        return { ingredient: `json ${broken.how}`, payload: broken.payload, contentType, expect: INVALID };
      }),
      fc.constant(brokenEncoding(msgpack, cut, trailing, Buffer.from([0]))).map((broken) => ({ ingredient: `msgpack ${broken.how}`, payload: broken.payload, contentType: 'application/msgpack', expect: INVALID })),
    );
  });
  const huge = fc.tuple(fc.constantFrom(...hugeHeaders), fc.uint8Array({ maxLength: 8 })).map(([header, tail]) => ({
    ingredient: 'msgpack huge length prefix',
    payload: Buffer.concat([Buffer.from(header), Buffer.from(tail)]),
    contentType: 'application/msgpack',
    expect: INVALID,
  }));
  const deep = fc.tuple(fc.integer({ min: 1_000, max: 20_000 }), fc.boolean()).chain(([depth, closed]) =>
    fc.oneof(
      fc.constant({ ingredient: 'json deep nesting', payload: Buffer.from('['.repeat(depth) + (closed ? ']'.repeat(depth) : '')), contentType: 'application/json', expect: INVALID }),
      fc.constant({ ingredient: 'msgpack deep nesting', payload: Buffer.concat([Buffer.alloc(depth, 0x91), Buffer.from(closed ? [0xc0] : [])]), contentType: 'application/msgpack', expect: INVALID }),
    ),
  );
  const extension = fc.constantFrom(
    { ingredient: 'msgpack timestamp instead of an object', payload: Buffer.from([0xd6, 0xff, 0, 0, 0, 1]), contentType: 'application/msgpack', expect: INVALID },
    { ingredient: 'msgpack reserved byte', payload: Buffer.from([0xc1]), contentType: 'application/msgpack', expect: INVALID },
  );
  return fc.oneof({ weight: 6, arbitrary: asJsonOrMsgpack }, { weight: 2, arbitrary: undecodable }, { weight: 1, arbitrary: huge }, { weight: 1, arbitrary: deep }, { weight: 1, arbitrary: extension });
}

import { connect } from 'node:net';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningMember } from '../../../src/server/member.js';
import { replayable } from '../../support/hostile/fast-check-options.js';
import { concatBytes, keyPath } from '../../support/hostile/keys.js';
import { KvModel, hex, type ModelCompare, type ModelKv, type ModelOp, type ModelOpResult } from '../../support/hostile/kv-model.js';
import { waitUntilSettled } from '../../support/hostile/member-state.js';
import { startSoloMember, type SoloMember } from '../../support/solo-member.js';

// Valid random requests (put, get, range, delete, txn; keys of any bytes in any spelling,
// any values, JSON text/base64 or msgpack answers, reads of past revisions) against a real
// one-member stack through inject(), each answer checked against a plain model. Every run
// works under its own key prefix, so runs share the member but not their keys.

const packr = new Packr({ useRecords: false });
const utf8 = new TextDecoder('utf-8', { fatal: true });

interface Real {
  readonly member: RunningMember;
  readonly namespace: Uint8Array;
}

/** How a request asks for its answer, and how its key is spelt in the path. */
interface Format {
  readonly msgpack: boolean;
  readonly base64: boolean;
  readonly spelling: readonly boolean[];
}

const formatArb: fc.Arbitrary<Format> = fc.record({ msgpack: fc.boolean(), base64: fc.boolean(), spelling: fc.array(fc.boolean(), { minLength: 1, maxLength: 6 }) });
// A small alphabet, with bytes that need escaping and bytes that are not UTF-8, so keys collide and nest.
const suffixArb = fc.array(fc.constantFrom(0x61, 0x62, 0x2f, 0x25, 0x3f, 0x23, 0x2e, 0x20, 0xff, 0x00), { maxLength: 4 }).map((b) => Uint8Array.from(b));
const valueArb = fc.oneof(fc.string({ maxLength: 8 }).map((s) => new TextEncoder().encode(s)), fc.uint8Array({ maxLength: 8 }));

function isText(bytes: Uint8Array): boolean {
  try {
    utf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

const view = (kv: ModelKv) => ({ key: hex(kv.key), value: hex(kv.value), createRevision: kv.createRevision, modRevision: kv.modRevision, version: kv.version, lease: kv.lease });

/** A key-value object of an answer, checked against API.md's text/base64 rule, as the model's shape. */
function wireKv(raw: Record<string, unknown>, format: Format): ReturnType<typeof view> {
  let key: Uint8Array;
  let value: Uint8Array;
  if (format.msgpack) {
    key = raw.key as Uint8Array;
    value = raw.value as Uint8Array;
  } else {
    const base64 = raw.encoding === 'base64';
    const bytes = (s: unknown) => (base64 ? Buffer.from(s as string, 'base64') : Buffer.from(s as string, 'utf8'));
    key = bytes(raw.key);
    value = bytes(raw.value);
    expect(base64, 'encoding is base64 exactly when asked for or needed').toBe(format.base64 || !isText(key) || !isText(value));
  }
  return view({ key, value, createRevision: raw.createRevision as number, modRevision: raw.modRevision as number, version: raw.version as number, lease: raw.lease as number });
}

async function call(real: Real, format: Format, method: 'GET' | 'PUT' | 'DELETE' | 'POST', path: string, query: Record<string, string | number | boolean | undefined>, payload?: Buffer, contentType?: string) {
  const all: Record<string, string | number | boolean | undefined> = { ...query, ...(format.base64 && !format.msgpack ? { encoding: 'base64' } : {}) };
  const params = Object.entries(all).filter(([, v]) => v !== undefined && v !== false);
  const url = `${path}${params.length ? `?${params.map(([k, v]) => `${k}=${String(v)}`).join('&')}` : ''}`;
  const headers: Record<string, string> = { ...(format.msgpack ? { accept: 'application/msgpack' } : {}), ...(contentType ? { 'content-type': contentType } : {}) };
  const response = await real.member.clientApp.inject({ method, url, headers, ...(payload ? { payload } : {}) });
  const body = (format.msgpack ? packr.unpack(response.rawPayload) : JSON.parse(response.body)) as Record<string, any>;
  return { status: response.statusCode, body, url };
}

/**
 * A '.' or '..' segment: inject() parses its URL as WHATWG URLs do, collapsing such
 * segments even when escaped (%2E), so keys holding one are only sent in txn bodies here
 * (over a socket the server keeps them: see the test at the end).
 */
function hasDotSegment(suffix: Uint8Array): boolean {
  return Buffer.from(suffix).toString('latin1').split('/').some((segment) => segment === '.' || segment === '..');
}

const keyUrl = (real: Real, suffix: Uint8Array, format: Format) => `/v1/kv/${keyPath(concatBytes(real.namespace, suffix), format.spelling)}`;
/** A revision of this run, as a fraction of the way from its start to now (0 = omitted: current). */
const pastRevision = (m: KvModel, fraction: number | undefined): number | undefined => {
  if (fraction === undefined) return undefined;
  const r = m.startRevision + Math.floor(fraction * (m.revision - m.startRevision));
  return r > 0 ? r : undefined;
};

/** ifVersion / ifModRevision: none, the key's current one, 0 (must not exist), or any small number. */
type Condition = { kind: 'none' } | { kind: 'matching' } | { kind: 'zero' } | { kind: 'number'; n: number };
const conditionArb: fc.Arbitrary<Condition> = fc.oneof(fc.constantFrom<Condition>({ kind: 'none' }, { kind: 'matching' }, { kind: 'zero' }), fc.nat({ max: 6 }).map((n): Condition => ({ kind: 'number', n })));
function conditionValue(c: Condition, current: number): number | undefined {
  switch (c.kind) {
    case 'none':
      return undefined;
    case 'matching':
      return current;
    case 'zero':
      return 0;
    case 'number':
      return c.n;
  }
}

class Put implements fc.AsyncCommand<KvModel, Real> {
  constructor(readonly suffix: Uint8Array, readonly value: Uint8Array, readonly prevKv: boolean, readonly on: 'ifVersion' | 'ifModRevision', readonly condition: Condition, readonly format: Format) {}
  check = () => !hasDotSegment(this.suffix);
  async run(m: KvModel, real: Real): Promise<void> {
    const key = concatBytes(real.namespace, this.suffix);
    const current = m.get(key);
    const expected = conditionValue(this.condition, (this.on === 'ifVersion' ? current?.version : current?.modRevision) ?? 0);
    const r = await call(real, this.format, 'PUT', keyUrl(real, this.suffix, this.format), { prevKv: this.prevKv, [this.on]: expected }, Buffer.from(this.value), 'application/octet-stream');
    if (expected !== undefined && expected !== ((this.on === 'ifVersion' ? current?.version : current?.modRevision) ?? 0)) {
      expect(r.status, r.url).toBe(412);
      expect(r.body.error.code).toBe('CompareFailed');
      expect(r.body.error.kv === undefined ? undefined : wireKv(r.body.error.kv, this.format)).toEqual(current ? view(current) : undefined);
      return;
    }
    const prev = m.put(key, this.value);
    expect(r.status, r.url).toBe(200);
    expect(r.body.header.revision).toBe(m.revision);
    expect(r.body.prevKv === undefined ? undefined : wireKv(r.body.prevKv, this.format)).toEqual(this.prevKv && prev ? view(prev) : undefined);
  }
  toString = () => `put ${hex(this.suffix)}=${hex(this.value)} prevKv=${this.prevKv} ${this.on}:${JSON.stringify(this.condition)} ${JSON.stringify(this.format)}`;
}

class Get implements fc.AsyncCommand<KvModel, Real> {
  constructor(readonly suffix: Uint8Array, readonly at: number | undefined, readonly keysOnly: boolean, readonly serializable: boolean, readonly format: Format) {}
  check = () => !hasDotSegment(this.suffix);
  async run(m: KvModel, real: Real): Promise<void> {
    const revision = pastRevision(m, this.at);
    const r = await call(real, this.format, 'GET', keyUrl(real, this.suffix, this.format), { revision, keysOnly: this.keysOnly, serializable: this.serializable });
    const [kv] = m.range(concatBytes(real.namespace, this.suffix), false, revision);
    if (!kv) {
      expect(r.status, r.url).toBe(404);
      expect(r.body.error.code).toBe('KeyNotFound');
      return;
    }
    expect(r.status, r.url).toBe(200);
    expect(r.body.header.revision).toBe(m.revision);
    expect(wireKv(r.body.kv, this.format)).toEqual(view(this.keysOnly ? { ...kv, value: new Uint8Array(0) } : kv));
  }
  toString = () => `get ${hex(this.suffix)} at=${this.at} keysOnly=${this.keysOnly} ${JSON.stringify(this.format)}`;
}

class Range implements fc.AsyncCommand<KvModel, Real> {
  constructor(readonly prefix: Uint8Array, readonly at: number | undefined, readonly limit: number, readonly keysOnly: boolean, readonly countOnly: boolean, readonly format: Format) {}
  check = () => !hasDotSegment(this.prefix);
  async run(m: KvModel, real: Real): Promise<void> {
    const revision = pastRevision(m, this.at);
    const r = await call(real, this.format, 'GET', keyUrl(real, this.prefix, this.format), { prefix: true, revision, limit: this.limit || undefined, keysOnly: this.keysOnly, countOnly: this.countOnly });
    const all = m.range(concatBytes(real.namespace, this.prefix), true, revision);
    const shown = this.countOnly ? [] : all.slice(0, this.limit || undefined).map((kv) => (this.keysOnly ? { ...kv, value: new Uint8Array(0) } : kv));
    expect(r.status, r.url).toBe(200);
    expect(r.body.header.revision).toBe(m.revision);
    expect({ kvs: (r.body.kvs as Record<string, unknown>[]).map((kv) => wireKv(kv, this.format)), count: r.body.count, more: r.body.more }).toEqual({
      kvs: shown.map(view),
      count: all.length,
      more: this.limit > 0 && all.length > this.limit,
    });
  }
  toString = () => `range ${hex(this.prefix)} at=${this.at} limit=${this.limit} keysOnly=${this.keysOnly} countOnly=${this.countOnly} ${JSON.stringify(this.format)}`;
}

class Delete implements fc.AsyncCommand<KvModel, Real> {
  constructor(readonly suffix: Uint8Array, readonly prefix: boolean, readonly prevKv: boolean, readonly condition: Condition, readonly format: Format) {}
  check = () => !hasDotSegment(this.suffix);
  async run(m: KvModel, real: Real): Promise<void> {
    const key = concatBytes(real.namespace, this.suffix);
    const current = m.get(key);
    const expected = conditionValue(this.condition, current?.modRevision ?? 0);
    const r = await call(real, this.format, 'DELETE', keyUrl(real, this.suffix, this.format), { prefix: this.prefix, prevKv: this.prevKv, ifModRevision: expected });
    if (expected !== undefined && expected !== (current?.modRevision ?? 0)) {
      expect(r.status, r.url).toBe(412);
      expect(r.body.error.code).toBe('CompareFailed');
      expect(r.body.error.kv === undefined ? undefined : wireKv(r.body.error.kv, this.format)).toEqual(current ? view(current) : undefined);
      return;
    }
    const victims = m.delete(key, this.prefix);
    expect(r.status, r.url).toBe(200);
    expect(r.body.header.revision).toBe(m.revision);
    expect(r.body.deleted).toBe(victims.length);
    expect(r.body.prevKvs === undefined ? undefined : (r.body.prevKvs as Record<string, unknown>[]).map((kv) => wireKv(kv, this.format))).toEqual(this.prevKv ? victims.map(view) : undefined);
  }
  toString = () => `delete ${hex(this.suffix)} prefix=${this.prefix} prevKv=${this.prevKv} ${JSON.stringify(this.condition)} ${JSON.stringify(this.format)}`;
}

type SuffixCompare = Omit<ModelCompare, 'key'> & { suffix: Uint8Array };
type SuffixOp = { get: { suffix: Uint8Array; prefix: boolean } } | { put: { suffix: Uint8Array; value: Uint8Array } } | { delete: { suffix: Uint8Array; prefix: boolean } };

/** A txn object's key (and value) as JSON text or base64, or raw bytes in msgpack. */
function bytesFields(fields: { key: Uint8Array; value?: Uint8Array }, msgpackBody: boolean, preferBase64: boolean): Record<string, unknown> {
  if (msgpackBody) return { ...fields };
  const base64 = preferBase64 || !isText(fields.key) || (fields.value !== undefined && !isText(fields.value));
  const text = (b: Uint8Array) => (base64 ? Buffer.from(b).toString('base64') : utf8.decode(b));
  return { key: text(fields.key), ...(fields.value !== undefined ? { value: text(fields.value) } : {}), ...(base64 ? { encoding: 'base64' } : {}) };
}

class Txn implements fc.AsyncCommand<KvModel, Real> {
  constructor(readonly compare: SuffixCompare[], readonly success: SuffixOp[], readonly failure: SuffixOp[], readonly msgpackBody: boolean, readonly preferBase64: boolean, readonly format: Format) {}
  check = () => true;
  async run(m: KvModel, real: Real): Promise<void> {
    const key = (suffix: Uint8Array) => concatBytes(real.namespace, suffix);
    const compare = this.compare.map(({ suffix, ...c }) => ({ ...c, key: key(suffix) }) as ModelCompare);
    const ops = (list: SuffixOp[]): ModelOp[] =>
      list.map((op) => ('get' in op ? { get: { key: key(op.get.suffix), prefix: op.get.prefix } } : 'put' in op ? { put: { key: key(op.put.suffix), value: op.put.value } } : { delete: { key: key(op.delete.suffix), prefix: op.delete.prefix } }));
    const wireOps = (list: ModelOp[]) =>
      list.map((op) =>
        'get' in op
          ? { get: { ...bytesFields({ key: op.get.key }, this.msgpackBody, this.preferBase64), prefix: op.get.prefix } }
          : 'put' in op
            ? { put: bytesFields(op.put, this.msgpackBody, this.preferBase64) }
            : { delete: { ...bytesFields({ key: op.delete.key }, this.msgpackBody, this.preferBase64), prefix: op.delete.prefix } },
      );
    const body = {
      compare: compare.map((c) => (c.target === 'value' ? { ...bytesFields({ key: c.key, value: c.value }, this.msgpackBody, this.preferBase64), target: c.target, op: c.op } : { ...bytesFields({ key: c.key }, this.msgpackBody, this.preferBase64), target: c.target, op: c.op, value: c.value })),
      success: wireOps(ops(this.success)),
      failure: wireOps(ops(this.failure)),
    };
    const payload = this.msgpackBody ? Buffer.from(packr.pack(body)) : Buffer.from(JSON.stringify(body));
    const r = await call(real, this.format, 'POST', '/v1/txn', {}, payload, this.msgpackBody ? 'application/msgpack' : 'application/json');
    if (writesKeyTwice(ops(this.success)) || writesKeyTwice(ops(this.failure))) {
      // As etcd: a branch that writes one key twice is refused, and nothing changes.
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      return;
    }
    const expected = m.txn(compare, ops(this.success), ops(this.failure));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.header.revision).toBe(m.revision);
    expect(r.body.succeeded).toBe(expected.succeeded);
    const got = (r.body.responses as Record<string, any>[]).map((x) =>
      'get' in x ? { get: { kvs: (x.get.kvs as Record<string, unknown>[]).map((kv) => wireKv(kv, this.format)), count: x.get.count } } : 'put' in x ? { put: x.put.prevKv ? { prevKv: wireKv(x.put.prevKv, this.format) } : {} } : x,
    );
    const want = expected.responses.map((x: ModelOpResult) => ('get' in x ? { get: { kvs: x.get.kvs.map(view), count: x.get.count } } : 'put' in x ? { put: x.put.prevKv ? { prevKv: view(x.put.prevKv) } : {} } : x));
    expect(got).toEqual(want);
  }
  toString = () =>
    `txn ${JSON.stringify({ compare: this.compare, success: this.success, failure: this.failure }, (_k, v: unknown) => (v instanceof Uint8Array ? hex(v) : v))} msgpackBody=${this.msgpackBody} base64=${this.preferBase64} ${JSON.stringify(this.format)}`;
}

/** Whether a branch puts a key twice, or puts one that a delete in it (by key or prefix) covers. */
function writesKeyTwice(ops: readonly ModelOp[]): boolean {
  const puts = ops.flatMap((op) => ('put' in op ? [Buffer.from(op.put.key).toString('latin1')] : []));
  if (new Set(puts).size !== puts.length) return true;
  return ops.some((op) => {
    if (!('delete' in op)) return false;
    const key = Buffer.from(op.delete.key).toString('latin1');
    return puts.some((k) => (op.delete.prefix ? k.startsWith(key) : k === key));
  });
}

const opArb: fc.Arbitrary<SuffixOp> = fc.oneof(
  fc.record({ get: fc.record({ suffix: suffixArb, prefix: fc.boolean() }) }),
  fc.record({ put: fc.record({ suffix: suffixArb, value: valueArb }) }),
  fc.record({ delete: fc.record({ suffix: suffixArb, prefix: fc.boolean() }) }),
);
const compareArb: fc.Arbitrary<SuffixCompare> = fc.oneof(
  fc.record({ suffix: suffixArb, target: fc.constant('value' as const), op: fc.constantFrom('=' as const, '!=' as const, '<' as const, '>' as const), value: valueArb }),
  fc.record({ suffix: suffixArb, target: fc.constantFrom('version' as const, 'createRevision' as const, 'modRevision' as const, 'lease' as const), op: fc.constantFrom('=' as const, '!=' as const, '<' as const, '>' as const), value: fc.nat({ max: 4 }) }),
);
const atArb = fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined });

const commands = fc.commands(
  [
    fc.tuple(suffixArb, valueArb, fc.boolean(), fc.constantFrom('ifVersion' as const, 'ifModRevision' as const), conditionArb, formatArb).map((a) => new Put(...a)),
    fc.tuple(suffixArb, atArb, fc.boolean(), fc.boolean(), formatArb).map((a) => new Get(...a)),
    fc.tuple(suffixArb, atArb, fc.nat({ max: 3 }), fc.boolean(), fc.boolean(), formatArb).map((a) => new Range(...a)),
    fc.tuple(suffixArb, fc.boolean(), fc.boolean(), conditionArb, formatArb).map((a) => new Delete(...a)),
    fc.tuple(fc.array(compareArb, { maxLength: 3 }), fc.array(opArb, { maxLength: 4 }), fc.array(opArb, { maxLength: 3 }), fc.boolean(), fc.boolean(), formatArb).map((a) => new Txn(...a)),
  ],
  { maxCommands: 40, size: 'max' },
);

describe('client API against a model (valid random requests)', () => {
  let solo: SoloMember;
  let runs = 0;

  beforeAll(async () => {
    solo = await startSoloMember();
    await waitUntilSettled(solo.member.clientApp);
  });
  afterAll(async () => {
    await solo?.close();
  });

  it('put, get, range, delete and txn answer as the model does (property)', async () => {
    await fc.assert(
      fc.asyncProperty(commands, async (cmds) => {
        const namespace = new TextEncoder().encode(`model-${++runs}/`);
        const setup = async () => {
          const status = (await solo.member.clientApp.inject({ url: '/v1/status' })).json();
          return { model: new KvModel(status.revision as number), real: { member: solo.member, namespace } };
        };
        await fc.asyncModelRun(setup, cmds);
      }),
      replayable(50),
    );
  });

  it("keeps keys with '.' and '..' segments as sent, over a socket (where nothing parses the path as a WHATWG URL)", async () => {
    const address = await solo.member.clientApp.listen({ host: '127.0.0.1', port: 0 });
    const { port } = new URL(address);
    const raw = (request: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = connect(Number(port), '127.0.0.1', () => socket.write(request));
        let answer = '';
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => (answer += chunk));
        socket.on('end', () => resolve(answer.slice(answer.indexOf('\r\n\r\n') + 4)));
        socket.on('error', reject);
      });
    const put = (path: string, value: string) => raw(`PUT ${path} HTTP/1.1\r\nhost: x\r\ncontent-length: ${value.length}\r\nconnection: close\r\n\r\n${value}`);
    const get = (path: string) => raw(`GET ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`);
    const keys: [string, string][] = [['/v1/kv/dots/%2E', 'dots/.'], ['/v1/kv/dots/%2e%2E', 'dots/..'], ['/v1/kv/dots/../x', 'dots/../x'], ['/v1/kv/dots/./', 'dots/./']];
    for (const [path, key] of keys) {
      expect(JSON.parse(await put(path, key)).header.revision, path).toBeGreaterThan(0);
      expect(JSON.parse(await get(path)).kv, path).toMatchObject({ key, value: key });
    }
    const listed = JSON.parse(await get('/v1/kv/dots/?prefix=true')) as { kvs: { key: string }[] };
    expect(listed.kvs.map((kv) => kv.key)).toEqual(keys.map(([, key]) => key).sort());
  });
});

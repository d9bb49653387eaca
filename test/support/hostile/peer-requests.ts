// Hostile peer requests: each is a valid request to the peer listener (right token, a
// known sender, addressed to the receiver, a well-formed batch) plus exactly one
// ingredient that makes it invalid, so it must be refused with a known status and code
// before anything reaches the Raft core.

import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { makeMessage, type Message, type MessageType, type NodeId } from '../../../src/raft/index.js';
import { WIRE_MESSAGE_TYPES, WIRE_VERSION, encodeMessages } from '../../../src/transport/codec.js';
import { encodeFrame } from '../../../src/transport/frames.js';
import {
  HEADER_CLUSTER,
  HEADER_FROM,
  HEADER_MESSAGE,
  HEADER_TO,
  MEMBERSHIP_BODY_BYTES_MAX,
  MEMBERSHIP_PATH,
  MEMBERSHIP_TIMEOUT_MS_MAX,
  MESSAGES_PATH,
  PEER_CONTENT_TYPE,
  SNAPSHOT_PATH,
  encodeMembershipRequest,
} from '../../../src/transport/peer-protocol.js';
import type { MembershipChange } from '../../../src/transport/transport.js';

const packr = new Packr({ useRecords: false });

export interface PeerSetup {
  readonly selfId: NodeId;
  /** A member allowed to send to selfId. */
  readonly sender: NodeId;
  readonly clusterToken: string;
  /** Generate bodies past this (only where the limit is small enough to send). */
  readonly maxBatchBytes?: number;
}

export interface PeerRequest {
  readonly method: 'POST' | 'GET' | 'PUT';
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly payload: Buffer;
}

export type PeerExpected = { readonly status: 400 | 403 | 413 | 415; readonly code: 'InvalidArgument' | 'PermissionDenied' | 'TooLarge' };
export interface HostilePeerRequest extends PeerRequest {
  readonly ingredient: string;
  readonly expect: PeerExpected;
}

const FORBIDDEN: PeerExpected = { status: 403, code: 'PermissionDenied' };
const MALFORMED: PeerExpected = { status: 400, code: 'InvalidArgument' };

/** Types a core stamps with its term, that may travel in a batch (not 'snap', which has its own route). */
const TERMED_TYPES: readonly MessageType[] = WIRE_MESSAGE_TYPES.filter((t) => !['snap', 'prop', 'readIndex', 'transferLeader'].includes(t));
const count = fc.nat({ max: 1000 });
const bytes = fc.uint8Array({ maxLength: 16 });

/** A message as a core would send it from `from` to `to`. */
export function validMessage(from: NodeId, to: NodeId): fc.Arbitrary<Message> {
  const termed = fc
    .record({ type: fc.constantFrom(...TERMED_TYPES), term: fc.integer({ min: 1, max: 1000 }), logTerm: count, index: count, commit: count, reject: fc.boolean(), rejectHint: count })
    .map((fields) => makeMessage({ ...fields, from, to }));
  const entry = fc.record({ term: count, index: count, type: fc.constant('normal' as const), data: bytes });
  const forwarded = fc.oneof(
    // The leader takes a proposal only for its own term: small terms make that likely.
    fc.record({ entries: fc.array(entry, { minLength: 1, maxLength: 3 }), logTerm: fc.nat({ max: 4 }) }).map((f) => makeMessage({ type: 'prop', from, to, ...f })),
    bytes.map((context) => makeMessage({ type: 'readIndex', from, to, context })),
  );
  return fc.oneof({ weight: 4, arbitrary: termed }, { weight: 1, arbitrary: forwarded });
}

export const validBatch = (setup: PeerSetup): fc.Arbitrary<Message[]> => fc.array(validMessage(setup.sender, setup.selfId), { minLength: 1, maxLength: 4 });

function envelope(setup: PeerSetup): Record<string, string> {
  return { 'content-type': PEER_CONTENT_TYPE, [HEADER_CLUSTER]: setup.clusterToken, [HEADER_FROM]: setup.sender, [HEADER_TO]: setup.selfId };
}

/** The positional wire form of a batch (codec.ts), to damage one field of it. */
function wireOf(messages: readonly Message[]): unknown[][] {
  return (packr.unpack(encodeMessages(messages)) as [number, unknown[][]])[1];
}

const headerSafe = fc.stringMatching(/^[\x21-\x7e]{1,24}$/);

function addressing(setup: PeerSetup): fc.Arbitrary<{ headers: Record<string, string | undefined>; ingredient: string }> {
  const other = (not: readonly string[]) => fc.oneof(headerSafe, fc.stringMatching(/^[0-9a-f]{16}$/)).filter((s) => !not.includes(s));
  return fc.oneof(
    fc.constant({ headers: { [HEADER_CLUSTER]: undefined }, ingredient: 'no cluster token' }),
    other([setup.clusterToken]).map((token) => ({ headers: { [HEADER_CLUSTER]: token }, ingredient: 'another cluster token' })),
    fc.constant({ headers: { [HEADER_FROM]: undefined }, ingredient: 'no sender' }),
    other([setup.sender, setup.selfId]).map((from) => ({ headers: { [HEADER_FROM]: from }, ingredient: 'unknown sender' })),
    fc.constant({ headers: { [HEADER_FROM]: setup.selfId }, ingredient: 'sender is the receiver itself' }),
    fc.constant({ headers: { [HEADER_TO]: undefined }, ingredient: 'no receiver' }),
    other([setup.selfId]).map((to) => ({ headers: { [HEADER_TO]: to }, ingredient: 'addressed to another member' })),
  );
}

/** Batches whose bytes or fields cannot be a batch, or that break what the envelope says. */
function malformedBatch(setup: PeerSetup): fc.Arbitrary<{ payload: Buffer; ingredient: string }> {
  const encoded = validBatch(setup).map((batch) => Buffer.from(encodeMessages(batch)));
  const damagedField = fc.tuple(validBatch(setup), fc.nat(), fc.integer({ min: 0, max: 12 }), fc.oneof(fc.string({ maxLength: 4 }), fc.integer({ max: -1 }), fc.double({ min: 0.1, max: 9, noInteger: true }), fc.constant({ x: 1 })))
    .filter(([, , field, value]) => !(field === 0 && typeof value === 'number' && Number.isInteger(value) && value >= 0 && value < WIRE_MESSAGE_TYPES.length))
    // Field 10 (snapshot metadata), 11 (context) and 12 (readRound) may be null; anything here is not that nor valid.
    .map(([batch, at, field, value]) => {
      const wire = wireOf(batch);
      wire[at % wire.length][field] = value;
      return { payload: Buffer.from(packr.pack([WIRE_VERSION, wire])), ingredient: `message field ${field} of the wrong type` };
    });
  const message = (ingredient: string, damage: (m: Message) => Message) =>
    fc.tuple(validBatch(setup), fc.nat()).map(([batch, at]) => {
      const i = at % batch.length;
      return { payload: Buffer.from(encodeMessages(batch.map((m, j) => (j === i ? damage(m) : m)))), ingredient };
    });
  const termed = (m: Message): boolean => TERMED_TYPES.includes(m.type);
  return fc.oneof(
    fc.constant({ payload: Buffer.alloc(0), ingredient: 'empty body' }),
    fc.tuple(encoded, fc.nat()).map(([b, cut]) => ({ payload: b.subarray(0, 1 + (cut % (b.length - 1))), ingredient: 'truncated batch' })),
    fc.tuple(encoded, fc.uint8Array({ minLength: 1, maxLength: 4 })).map(([b, extra]) => ({ payload: Buffer.concat([b, extra]), ingredient: 'bytes after the batch' })),
    fc.tuple(fc.constantFrom([0xdd, 0x7f, 0xff, 0xff, 0xff], [0x92, 0x01, 0xdd, 0x10, 0, 0, 0], [0x92, 0x01, 0x91, 0xdc, 0xff, 0xff], [0xc6, 0xff, 0xff, 0xff, 0xff], [0xdb, 0x40, 0, 0, 0]), bytes).map(([h, tail]) => ({
      payload: Buffer.concat([Buffer.from(h), Buffer.from(tail)]),
      ingredient: 'huge length prefix',
    })),
    fc.tuple(validBatch(setup), fc.oneof(fc.integer({ min: 2, max: 300 }), fc.constant(0), fc.string({ maxLength: 3 }))).map(([batch, version]) => ({ payload: Buffer.from(packr.pack([version, wireOf(batch)])), ingredient: `wire version ${String(version)}` })),
    fc.tuple(validBatch(setup), fc.integer({ min: WIRE_MESSAGE_TYPES.length, max: 255 })).map(([batch, code]) => {
      const wire = wireOf(batch);
      wire[0][0] = code;
      return { payload: Buffer.from(packr.pack([WIRE_VERSION, wire])), ingredient: `unknown message type ${code}` };
    }),
    damagedField,
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => ({ payload: Buffer.concat([Buffer.from([0x92, 0x02]), Buffer.from(b)]), ingredient: 'random bytes after a wrong version' })),
    message('message from another member than the envelope', (m) => ({ ...m, from: `${m.from}x` as NodeId })),
    message('message to another member', (m) => ({ ...m, to: `${m.to}x` as NodeId })),
    message('message from the receiver itself', (m) => ({ ...m, from: setup.selfId })),
    message('snapshot in a batch', (m) => ({ ...m, type: 'snap', term: Math.max(1, m.term), snapshot: { metadata: { index: 9, term: 1, confState: { voters: [m.from], learners: [] } }, data: new Uint8Array(0) } })),
    message('term 0 on a message that carries one', (m) => (termed(m) ? { ...m, term: 0 } : { ...m, type: 'heartbeat', term: 0, entries: [] })),
    message('a term on a forwarded request', (m) => (termed(m) ? { ...m, type: 'readIndex', term: 1 + m.term } : { ...m, term: 7 })),
    message('a proposal without entries', (m) => ({ ...m, type: 'prop', term: 0, entries: [] })),
  );
}

function snapshotHeader(messages: readonly Message[]): string {
  return Buffer.from(encodeMessages(messages)).toString('base64');
}

/** Snapshot requests with a missing or wrong x-cairn-message (the body is never read). */
function malformedSnapshot(setup: PeerSetup): fc.Arbitrary<{ header: string | undefined; ingredient: string }> {
  const snap = (fields: Partial<Message>): Message =>
    makeMessage({ type: 'snap', from: setup.sender, to: setup.selfId, term: 3, snapshot: { metadata: { index: 5, term: 2, confState: { voters: [setup.sender], learners: [] } }, data: new Uint8Array(0) }, ...fields });
  return fc.oneof(
    fc.constant({ header: undefined, ingredient: 'no message header' }),
    fc.uint8Array({ minLength: 1, maxLength: 40 }).map((b) => ({ header: Buffer.concat([Buffer.from([0xc1]), Buffer.from(b)]).toString('base64'), ingredient: 'header is not msgpack' })),
    validMessage(setup.sender, setup.selfId).map((m) => ({ header: snapshotHeader([m]), ingredient: `header holds a ${m.type}` })),
    fc.constant({ header: snapshotHeader([snap({}), snap({})]), ingredient: 'header holds two messages' }),
    fc.constant({ header: snapshotHeader([snap({ from: `${setup.sender}x` as NodeId })]), ingredient: 'snapshot from another member' }),
    fc.constant({ header: snapshotHeader([snap({ to: `${setup.selfId}x` as NodeId })]), ingredient: 'snapshot to another member' }),
    fc.constant({ header: snapshotHeader([snap({ term: 0 })]), ingredient: 'snapshot without a term' }),
  );
}

const memberId = fc.stringMatching(/^[0-9a-f]{16}$/);
const peerUrl = fc.tuple(fc.constantFrom('http', 'https'), fc.integer({ min: 1, max: 65535 })).map(([scheme, port]) => `${scheme}://127.0.0.1:${port}`);

/** A membership change as a member would ask it of the leader (peer-protocol.ts). */
export const validMembershipChange: fc.Arbitrary<MembershipChange> = fc.oneof(
  fc.record({ op: fc.constant('add' as const), peerUrls: fc.array(peerUrl, { minLength: 1, maxLength: 3 }), learner: fc.boolean() }),
  fc.record({ op: fc.constantFrom('remove' as const, 'promote' as const), memberId }),
);

/** Membership requests whose bytes or fields cannot be one (the leader must not act on any of them). */
function malformedMembership(): fc.Arbitrary<{ payload: Buffer; ingredient: string }> {
  const valid = fc.tuple(validMembershipChange, fc.integer({ min: 1, max: MEMBERSHIP_TIMEOUT_MS_MAX }));
  const fields = valid.map(([change, timeoutMs]) => ({ version: 1, ...change, timeoutMs }) as Record<string, unknown>);
  const damaged = (ingredient: string, damage: (fields: Record<string, unknown>) => Record<string, unknown>) =>
    fields.map((f) => ({ payload: Buffer.from(packr.pack(damage(f))), ingredient }));
  const notA = (...kinds: string[]) => fc.oneof(fc.string({ maxLength: 4 }), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.nat(), { maxLength: 2 })).filter((v) => !kinds.includes(Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v));
  return fc.oneof(
    fc.constant({ payload: Buffer.alloc(0), ingredient: 'empty membership body' }),
    fc.uint8Array({ minLength: 1, maxLength: 40 }).map((b) => ({ payload: Buffer.concat([Buffer.from([0xc1]), Buffer.from(b)]), ingredient: 'membership body is not msgpack' })),
    valid.map(([change, timeoutMs]) => ({ payload: Buffer.concat([Buffer.from(encodeMembershipRequest(change, timeoutMs)), Buffer.from([0x01])]), ingredient: 'bytes after the membership request' })),
    fc.oneof(fc.array(fc.nat(), { maxLength: 3 }), fc.string({ maxLength: 8 }), fc.integer()).map((v) => ({ payload: Buffer.from(packr.pack(v)), ingredient: 'membership body is not a map' })),
    fc.tuple(fields, fc.oneof(fc.integer({ min: 2, max: 300 }), fc.constant(0), fc.string({ maxLength: 3 }))).map(([f, version]) => ({ payload: Buffer.from(packr.pack({ ...f, version })), ingredient: `membership version ${String(version)}` })),
    fc.tuple(fields, fc.string({ maxLength: 8 }).filter((op) => !['add', 'remove', 'promote'].includes(op))).map(([f, op]) => ({ payload: Buffer.from(packr.pack({ ...f, op })), ingredient: `membership op ${JSON.stringify(op)}` })),
    fc.tuple(fields, fc.constantFrom('version', 'op', 'timeoutMs')).map(([f, missing]) => ({ payload: Buffer.from(packr.pack(Object.fromEntries(Object.entries(f).filter(([key]) => key !== missing)))), ingredient: `membership request without ${missing}` })),
    fc.tuple(fields, fc.constantFrom('force', 'name', 'memberId', 'peerUrls', '__proto__x')).filter(([f, extra]) => !(extra in f)).map(([f, extra]) => ({ payload: Buffer.from(packr.pack({ ...f, [extra]: 1 })), ingredient: `membership request with an extra field ${extra}` })),
    fc.tuple(fields, fc.oneof(fc.integer({ max: 0 }), fc.integer({ min: MEMBERSHIP_TIMEOUT_MS_MAX + 1 }), fc.double({ min: 0.1, max: 9, noInteger: true }), notA('number'))).map(([f, timeoutMs]) => ({ payload: Buffer.from(packr.pack({ ...f, timeoutMs })), ingredient: `membership timeoutMs ${String(timeoutMs)}` })),
    fc.tuple(memberId, fc.oneof(fc.string({ maxLength: 15 }), fc.stringMatching(/^[0-9A-F]{16}$/), fc.stringMatching(/^[0-9a-f]{17,20}$/), notA('string'))).map(([, bad]) => ({ payload: Buffer.from(packr.pack({ version: 1, op: 'promote', memberId: bad, timeoutMs: 100 })), ingredient: `membership memberId ${String(bad)}` })),
    fc.oneof(fc.constant([]), fc.array(peerUrl, { minLength: 17, maxLength: 20 }), fc.array(fc.oneof(fc.string({ maxLength: 10 }), fc.constant('ftp://h:1'), fc.constant('http://h'), fc.integer()), { minLength: 1, maxLength: 3 }), notA('array')).map((peerUrls) => ({ payload: Buffer.from(packr.pack({ version: 1, op: 'add', peerUrls, learner: true, timeoutMs: 100 })), ingredient: `membership peerUrls ${JSON.stringify(peerUrls).slice(0, 40)}` })),
    notA('boolean').map((learner) => ({ payload: Buffer.from(packr.pack({ version: 1, op: 'add', peerUrls: ['http://h:1'], learner, timeoutMs: 100 })), ingredient: `membership learner ${String(learner)}` })),
  );
}

/** Any hostile peer request for the member `setup` describes. */
export function hostilePeerRequest(setup: PeerSetup): fc.Arbitrary<HostilePeerRequest> {
  const base = envelope(setup);
  const withHeaders = (overrides: Record<string, string | undefined>): Record<string, string> => {
    const all: Record<string, string | undefined> = { ...base, ...overrides };
    return Object.fromEntries(Object.entries(all).filter((e): e is [string, string] => e[1] !== undefined));
  };
  const validBody = validBatch(setup).map((b) => encodeFrame(encodeMessages(b)));
  const path = fc.constantFrom(MESSAGES_PATH, SNAPSHOT_PATH, MEMBERSHIP_PATH);
  const snapHeader = snapshotHeader([makeMessage({ type: 'snap', from: setup.sender, to: setup.selfId, term: 3, snapshot: { metadata: { index: 5, term: 2, confState: { voters: [setup.sender], learners: [] } }, data: new Uint8Array(0) } })]);
  // Weighted by how many kinds each holds, so every kind comes up.
  const arbitraries: fc.WeightedArbitrary<HostilePeerRequest>[] = [
    { weight: 3, arbitrary: fc.tuple(addressing(setup), path, validBody).map(([a, url, payload]) => ({ method: 'POST', url, headers: withHeaders({ ...a.headers, [HEADER_MESSAGE]: snapHeader }), payload, ingredient: a.ingredient, expect: FORBIDDEN })) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('application/json', 'text/plain', 'application/msgpack', 'application/x-www-form-urlencoded'), validBody, path).map(([type, payload, url]) => ({
      method: 'POST',
      url,
      headers: withHeaders({ 'content-type': type, [HEADER_MESSAGE]: snapHeader }),
      payload,
      ingredient: `content-type ${type}`,
      expect: { status: 415, code: 'InvalidArgument' },
    })) },
    // As a sender streams it: the batch in a frame (frames.ts); an empty body stays empty.
    { weight: 8, arbitrary: malformedBatch(setup).map(({ payload, ingredient }) => ({ method: 'POST', url: MESSAGES_PATH, headers: withHeaders({}), payload: payload.length === 0 ? payload : encodeFrame(payload), ingredient, expect: MALFORMED })) },
    { weight: 1, arbitrary: fc.tuple(validBatch(setup), fc.nat()).map(([batch, cut]): HostilePeerRequest => {
      const frame = encodeFrame(encodeMessages(batch));
      return { method: 'POST', url: MESSAGES_PATH, headers: withHeaders({}), payload: frame.subarray(0, 1 + (cut % (frame.length - 1))), ingredient: 'frame cut short', expect: MALFORMED };
    }) },
    { weight: 3, arbitrary: fc.tuple(malformedSnapshot(setup), fc.uint8Array({ maxLength: 64 })).map(([{ header, ingredient }, body]) => ({ method: 'POST', url: SNAPSHOT_PATH, headers: withHeaders({ [HEADER_MESSAGE]: header }), payload: Buffer.from(body), ingredient, expect: MALFORMED })) },
    { weight: 4, arbitrary: malformedMembership().map(({ payload, ingredient }) => ({ method: 'POST', url: MEMBERSHIP_PATH, headers: withHeaders({}), payload, ingredient, expect: MALFORMED })) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 4096 }).map((extra): HostilePeerRequest => ({ method: 'POST', url: MEMBERSHIP_PATH, headers: withHeaders({}), payload: Buffer.alloc(MEMBERSHIP_BODY_BYTES_MAX + extra, 0x90), ingredient: 'membership request past the limit', expect: { status: 413, code: 'TooLarge' } })) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom<[PeerRequest['method'], string]>(['GET', MESSAGES_PATH], ['PUT', SNAPSHOT_PATH], ['GET', MEMBERSHIP_PATH], ['POST', '/raft/other'], ['POST', '/v1/kv/a'], ['GET', '/'])).map(([[method, url]]) => ({
      method,
      url,
      headers: withHeaders({}),
      payload: Buffer.alloc(0),
      ingredient: `no route ${method} ${url}`,
      expect: MALFORMED,
    })) },
  ];
  if (setup.maxBatchBytes !== undefined) {
    const limit = setup.maxBatchBytes;
    // A frame whose length prefix (0x90909090) is past the limit.
    const tooLarge = fc.integer({ min: 1, max: 4096 }).map((extra): HostilePeerRequest => ({ method: 'POST', url: MESSAGES_PATH, headers: withHeaders({}), payload: Buffer.alloc(limit + extra, 0x90), ingredient: 'frame past the limit', expect: { status: 413, code: 'TooLarge' } }));
    arbitraries.push({ weight: 1, arbitrary: tooLarge });
  }
  return fc.oneof(...arbitraries);
}

/** Messages from `from` with terms below `currentTerm`: well formed, and the core must ignore them. */
export function staleMessages(from: NodeId, to: NodeId, currentTerm: number): fc.Arbitrary<Message[]> {
  return fc.array(
    fc
      .record({ type: fc.constantFrom(...TERMED_TYPES), term: fc.integer({ min: 1, max: Math.max(1, currentTerm - 1) }), logTerm: count, index: count, commit: count, reject: fc.boolean(), rejectHint: count })
      .map((fields) => makeMessage({ ...fields, from, to })),
    { minLength: 1, maxLength: 4 },
  );
}

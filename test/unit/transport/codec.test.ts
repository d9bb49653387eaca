import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { PEER_MESSAGE_TYPES, makeMessage, nodeId, type Entry, type Message, type MessageType } from '../../../src/raft/index.js';
import { WIRE_VERSION, decodeMessages, encodeMessages, withoutSnapshotData } from '../../../src/transport/codec.js';
import { MalformedMessageError } from '../../../src/transport/errors.js';
import { A, B, app, entry, snap } from './helpers.js';

const packr = new Packr({ useRecords: false });

function expectMalformed(bytes: Uint8Array, pattern?: RegExp): void {
  let thrown: unknown;
  try {
    decodeMessages(bytes);
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(MalformedMessageError);
  if (pattern !== undefined) expect((thrown as Error).message).toMatch(pattern);
}

/** A valid wire message with one field replaced. */
function wireWith(field: number, value: unknown): Uint8Array {
  const wire: unknown[] = [0, A, B, 1, 1, 1, [], 0, false, 0, null, null, null];
  wire[field] = value;
  return packr.pack([WIRE_VERSION, [wire]]);
}

const peerTypes = [...PEER_MESSAGE_TYPES] as MessageType[];
const count = fc.nat({ max: Number.MAX_SAFE_INTEGER });
const id = fc.string({ minLength: 1, maxLength: 20 }).map(nodeId);
const arbitraryEntry: fc.Arbitrary<Entry> = fc.record({
  term: count,
  index: count,
  type: fc.constantFrom('normal' as const, 'confChange' as const),
  data: fc.uint8Array({ maxLength: 64 }),
});
const arbitraryMessage: fc.Arbitrary<Message> = fc
  .record(
    {
      type: fc.constantFrom(...peerTypes),
      from: id,
      to: id,
      term: count,
      logTerm: count,
      index: count,
      entries: fc.array(arbitraryEntry, { maxLength: 4 }),
      commit: count,
      reject: fc.boolean(),
      rejectHint: count,
      snapshot: fc.record({
        metadata: fc.record({
          index: count,
          term: count,
          confState: fc.record({ voters: fc.array(id, { maxLength: 5 }), learners: fc.array(id, { maxLength: 3 }) }),
        }),
        data: fc.constant(new Uint8Array(0)),
      }),
      context: fc.uint8Array({ maxLength: 32 }),
      readRound: count,
    },
    { requiredKeys: ['type', 'from', 'to', 'term', 'logTerm', 'index', 'entries', 'commit', 'reject', 'rejectHint'] },
  )
  .map((fields) => fields as Message);

describe('codec round trip', () => {
  it('keeps every field of every peer message type, binary entry data included', () => {
    const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
    const messages: Message[] = [
      app(A, B, 7, { entries: [entry(8, 1, binary), entry(9, 2, new Uint8Array(0)), { ...entry(10, 2, 'cc'), type: 'confChange' }] }),
      makeMessage({ type: 'appResp', from: B, to: A, term: 2, index: 6, reject: true, rejectHint: 4, logTerm: 1 }),
      makeMessage({ type: 'heartbeat', from: A, to: B, term: 2, commit: 5, readRound: 3 }),
      makeMessage({ type: 'readIndex', from: B, to: A, term: 2, context: new Uint8Array([0, 255, 1]) }),
      makeMessage({ type: 'prop', from: B, to: A, entries: [entry(0, 0, 'forwarded')] }),
      snap(A, B, 100),
      ...peerTypes.map((type) => makeMessage({ type, from: A, to: B, term: 9 })),
    ];
    expect(decodeMessages(encodeMessages(messages))).toEqual(messages);
  });

  it('gives entry data as plain Uint8Array views, not Buffers', () => {
    const [message] = decodeMessages(encodeMessages([app(A, B, 1, { entries: [entry(2, 1, 'x')] })]));
    expect(message.entries[0].data.constructor).toBe(Uint8Array);
  });

  it('drops snapshot data: it streams on its own request', () => {
    const big = { ...snap(A, B, 5), snapshot: { ...snap(A, B, 5).snapshot!, data: new Uint8Array(1000).fill(7) } };
    const [decoded] = decodeMessages(encodeMessages([big]));
    expect(decoded.snapshot?.data.byteLength).toBe(0);
    expect(decoded).toEqual(withoutSnapshotData(big));
    expect(decoded.snapshot?.metadata).toEqual(big.snapshot.metadata);
  });

  it('round-trips arbitrary messages (property)', () => {
    fc.assert(
      fc.property(fc.array(arbitraryMessage, { maxLength: 5 }), (messages) => {
        expect(decodeMessages(encodeMessages(messages))).toEqual(messages);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses to encode a local-only message type', () => {
    expect(() => encodeMessages([makeMessage({ type: 'hup', from: A, to: B })])).toThrow(RangeError);
  });
});

describe('codec rejects malformed input', () => {
  it('names what is wrong', () => {
    expectMalformed(new Uint8Array(0), /not valid msgpack/);
    expectMalformed(packr.pack({ hello: 'world' }), /batch must be \[version, messages\]/);
    expectMalformed(packr.pack([99, []]), /wire version 99/);
    expectMalformed(packr.pack([WIRE_VERSION, 'x']), /messages must be an array/);
    expectMalformed(packr.pack([WIRE_VERSION, [[1, 2, 3]]]), /message 0 must be an array of 13 fields/);
    expectMalformed(wireWith(0, 99), /unknown type code 99/);
    expectMalformed(wireWith(0, 'app'), /unknown type code "app"/);
    expectMalformed(wireWith(1, ''), /field 'from' must be a member id/);
    expectMalformed(wireWith(2, 5), /field 'to' must be a member id/);
    expectMalformed(wireWith(1, 'x'.repeat(300)), /field 'from'/);
    expectMalformed(wireWith(3, -1), /field 'term' must be a non-negative integer, got -1/);
    expectMalformed(wireWith(4, 1.5), /field 'logTerm' .* got 1.5/);
    expectMalformed(wireWith(5, 2 ** 60), /field 'index'/);
    expectMalformed(wireWith(5, 2n ** 64n - 1n), /field 'index'/);
    expectMalformed(wireWith(6, {}), /field 'entries' must be an array/);
    expectMalformed(wireWith(6, [[1, 1, 0, 'text']]), /entry 0 field 'data' must be bytes/);
    expectMalformed(wireWith(6, [[1, 1, 7, new Uint8Array(1)]]), /unknown entry type code 7/);
    expectMalformed(wireWith(6, [[1, 1, 0]]), /entry 0 must be an array of 4 fields/);
    expectMalformed(wireWith(8, 0), /field 'reject' must be a boolean/);
    expectMalformed(wireWith(10, [1, 1, 'a', []]), /field 'voters' must be an array/);
    expectMalformed(wireWith(10, [1, 1, [''], []]), /field 'voters\[0\]'/);
    expectMalformed(wireWith(11, 'ctx'), /field 'context' must be bytes/);
    expectMalformed(wireWith(12, -3), /field 'readRound'/);
    expectMalformed(new Uint8Array([...packr.pack([WIRE_VERSION, []]), 0x01]), /not valid msgpack/);
  });

  it('accepts the valid baseline those cases start from', () => {
    expect(decodeMessages(packr.pack([WIRE_VERSION, [[0, A, B, 1, 1, 1, [], 0, false, 0, null, null, null]]]))).toHaveLength(1);
  });

  it('throws only MalformedMessageError for random bytes (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        try {
          const messages = decodeMessages(bytes);
          expect(Array.isArray(messages)).toBe(true);
        } catch (error) {
          expect(error).toBeInstanceOf(MalformedMessageError);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('throws only MalformedMessageError for arbitrary msgpack values (property)', () => {
    fc.assert(
      fc.property(fc.anything({ withBigInt: true, withTypedArray: true, withMap: true, withSet: true, withDate: true }), (value) => {
        let bytes: Uint8Array;
        try {
          bytes = packr.pack([WIRE_VERSION, [value]]);
        } catch {
          return; // not encodable: nothing to decode
        }
        expect(() => decodeMessages(bytes)).toThrow(MalformedMessageError);
      }),
      { numRuns: 1000 },
    );
  });

  it('throws only MalformedMessageError for corrupted valid batches (property)', () => {
    const valid = encodeMessages([app(A, B, 1, { entries: [entry(2, 1, 'payload')] }), snap(A, B, 4)]);
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.nat({ max: valid.length - 1 }), byte: fc.nat({ max: 255 }) }), { minLength: 1, maxLength: 4 }),
        fc.nat({ max: valid.length }),
        (flips, keep) => {
          const bytes = Uint8Array.from(valid.subarray(0, keep));
          for (const { at, byte } of flips) if (at < bytes.length) bytes[at] = byte;
          try {
            decodeMessages(bytes);
          } catch (error) {
            expect(error).toBeInstanceOf(MalformedMessageError);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });
});

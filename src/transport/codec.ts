// The wire format of a batch of Raft messages between peers.
//
// msgpack (msgpackr, no records, no structured clone) of positional arrays, so no
// field name is repeated per message or per entry:
//
//   batch    = [WIRE_VERSION, [message, ...]]
//   message  = [typeCode, from, to, term, logTerm, index, [entry, ...], commit, reject,
//               rejectHint, snapshotMetadata | null, context | null, readRound | null]
//   entry    = [term, index, entryTypeCode, data]
//   snapshotMetadata = [index, term, [voter, ...], [learner, ...]]
//
// typeCode is the position in WIRE_MESSAGE_TYPES and entryTypeCode the position in
// WIRE_ENTRY_TYPES; both tables are append-only. A snapshot's data never travels in a
// batch: a 'snap' message carries only its metadata here, and its data streams on its
// own request (see peer-sender.ts). Decoding checks every field, so whatever the bytes,
// the result is a well-typed batch or a MalformedMessageError.

import { Packr } from 'msgpackr';
import {
  EMPTY_BYTES,
  PEER_MESSAGE_TYPES,
  entryBytes,
  type Entry,
  type EntryType,
  type Message,
  type MessageType,
  type NodeId,
  type SnapshotMetadata,
} from '../raft/types.js';
import { MalformedMessageError } from './errors.js';

export const WIRE_VERSION = 1;

/** Wire codes of the message types that travel between peers. Append only: a code never changes meaning. */
export const WIRE_MESSAGE_TYPES: readonly MessageType[] = Object.freeze([
  'app',
  'appResp',
  'vote',
  'voteResp',
  'preVote',
  'preVoteResp',
  'snap',
  'heartbeat',
  'heartbeatResp',
  'timeoutNow',
  'readIndex',
  'readIndexResp',
  'prop',
  'transferLeader',
] as const);

const WIRE_TYPE_CODES: ReadonlyMap<MessageType, number> = new Map(WIRE_MESSAGE_TYPES.map((type, code) => [type, code]));

/** Whether messages of this type travel between peers (the others are local to a member). */
export function isPeerMessageType(type: MessageType): boolean {
  return WIRE_TYPE_CODES.has(type);
}

/** Wire codes of entry types. Append only. */
export const WIRE_ENTRY_TYPES: readonly EntryType[] = Object.freeze(['normal', 'confChange'] as const);

/** Member ids are 16 hex digits; anything much longer is not an id. */
export const MAX_NODE_ID_LENGTH = 256;

const MESSAGE_FIELD_COUNT = 13;
const ENTRY_FIELD_COUNT = 4;
const SNAPSHOT_METADATA_FIELD_COUNT = 4;

for (const type of PEER_MESSAGE_TYPES) {
  // A peer message type without a wire code could be sent but never received.
  if (!WIRE_MESSAGE_TYPES.includes(type)) throw new Error(`transport codec: no wire code for peer message type '${type}'`);
}

// structuredClone: false refuses msgpackr's reference extensions, whose decoder trusts its input.
const packr = new Packr({ useRecords: false, structuredClone: false });

/** Encodes messages for one request. A 'snap' message keeps its snapshot metadata and loses its data. */
export function encodeMessages(messages: readonly Message[]): Uint8Array {
  return packr.pack([WIRE_VERSION, messages.map(toWire)]);
}

/** Decodes and validates a batch. Throws MalformedMessageError, and nothing else, for any bytes that are not a valid batch. */
export function decodeMessages(bytes: Uint8Array): Message[] {
  let decoded: unknown;
  try {
    decoded = packr.unpack(bytes);
  } catch (error) {
    throw new MalformedMessageError(`batch is not valid msgpack: ${errorText(error)}`, { cause: error });
  }
  try {
    return fromWireBatch(decoded);
  } catch (error) {
    if (error instanceof MalformedMessageError) throw error;
    // Validation only reads plain values; reaching here is a bug, but it must not escape as a TypeError.
    throw new MalformedMessageError(`batch could not be validated: ${errorText(error)}`, { cause: error });
  }
}

/** A rough size of a message on the wire, for batch and queue byte limits. */
export function estimateMessageBytes(message: Message): number {
  let bytes = 64 + message.from.length + message.to.length + (message.context?.byteLength ?? 0);
  for (const entry of message.entries) bytes += entryBytes(entry);
  return bytes;
}

/** The message as a receiver sees it: a snapshot's data is dropped (it streams separately). */
export function withoutSnapshotData(message: Message): Message {
  if (message.snapshot === undefined || message.snapshot.data.byteLength === 0) return message;
  return { ...message, snapshot: { metadata: message.snapshot.metadata, data: EMPTY_BYTES } };
}

function toWire(message: Message): unknown[] {
  const typeCode = WIRE_TYPE_CODES.get(message.type);
  if (typeCode === undefined) throw new RangeError(`transport codec: message type '${message.type}' is local and never sent to a peer`);
  const metadata = message.snapshot?.metadata;
  return [
    typeCode,
    message.from,
    message.to,
    message.term,
    message.logTerm,
    message.index,
    message.entries.map((entry) => [entry.term, entry.index, WIRE_ENTRY_TYPES.indexOf(entry.type), entry.data]),
    message.commit,
    message.reject,
    message.rejectHint,
    metadata === undefined
      ? null
      : [metadata.index, metadata.term, metadata.confState.voters, metadata.confState.learners],
    message.context ?? null,
    message.readRound ?? null,
  ];
}

function fromWireBatch(value: unknown): Message[] {
  if (!Array.isArray(value) || value.length !== 2) throw malformed('batch', 'must be [version, messages]');
  if (value[0] !== WIRE_VERSION) throw malformed('batch', `has wire version ${describe(value[0])}, expected ${WIRE_VERSION}`);
  const wireMessages: unknown = value[1];
  if (!Array.isArray(wireMessages)) throw malformed('batch', 'messages must be an array');
  const messages: Message[] = new Array(wireMessages.length);
  for (let i = 0; i < wireMessages.length; i++) messages[i] = fromWireMessage(wireMessages[i], `message ${i}`);
  return messages;
}

function fromWireMessage(value: unknown, where: string): Message {
  if (!Array.isArray(value) || value.length !== MESSAGE_FIELD_COUNT) {
    throw malformed(where, `must be an array of ${MESSAGE_FIELD_COUNT} fields`);
  }
  const typeCode = value[0];
  const type = Number.isInteger(typeCode) ? WIRE_MESSAGE_TYPES[typeCode as number] : undefined;
  if (type === undefined || !PEER_MESSAGE_TYPES.has(type)) throw malformed(where, `has unknown type code ${describe(typeCode)}`);
  const message: {
    -readonly [K in keyof Message]: Message[K];
  } = {
    type,
    from: nodeIdField(value[1], where, 'from'),
    to: nodeIdField(value[2], where, 'to'),
    term: countField(value[3], where, 'term'),
    logTerm: countField(value[4], where, 'logTerm'),
    index: countField(value[5], where, 'index'),
    entries: entriesField(value[6], where),
    commit: countField(value[7], where, 'commit'),
    reject: booleanField(value[8], where, 'reject'),
    rejectHint: countField(value[9], where, 'rejectHint'),
  };
  if (value[10] !== null) {
    message.snapshot = { metadata: snapshotMetadataField(value[10], where), data: EMPTY_BYTES };
  }
  if (value[11] !== null) message.context = bytesField(value[11], where, 'context');
  if (value[12] !== null) message.readRound = countField(value[12], where, 'readRound');
  return message;
}

function entriesField(value: unknown, where: string): Entry[] {
  if (!Array.isArray(value)) throw malformed(where, `field 'entries' must be an array`);
  const entries: Entry[] = new Array(value.length);
  for (let i = 0; i < value.length; i++) {
    const wire: unknown = value[i];
    const at = `${where} entry ${i}`;
    if (!Array.isArray(wire) || wire.length !== ENTRY_FIELD_COUNT) throw malformed(at, `must be an array of ${ENTRY_FIELD_COUNT} fields`);
    const typeCode = wire[2];
    const type = Number.isInteger(typeCode) ? WIRE_ENTRY_TYPES[typeCode as number] : undefined;
    if (type === undefined) throw malformed(at, `has unknown entry type code ${describe(typeCode)}`);
    entries[i] = {
      term: countField(wire[0], at, 'term'),
      index: countField(wire[1], at, 'index'),
      type,
      data: bytesField(wire[3], at, 'data'),
    };
  }
  return entries;
}

function snapshotMetadataField(value: unknown, where: string): SnapshotMetadata {
  const at = `${where} snapshot metadata`;
  if (!Array.isArray(value) || value.length !== SNAPSHOT_METADATA_FIELD_COUNT) {
    throw malformed(at, `must be an array of ${SNAPSHOT_METADATA_FIELD_COUNT} fields`);
  }
  return {
    index: countField(value[0], at, 'index'),
    term: countField(value[1], at, 'term'),
    confState: { voters: nodeIdList(value[2], at, 'voters'), learners: nodeIdList(value[3], at, 'learners') },
  };
}

function nodeIdList(value: unknown, where: string, field: string): NodeId[] {
  if (!Array.isArray(value)) throw malformed(where, `field '${field}' must be an array of member ids`);
  return value.map((id: unknown, i) => nodeIdField(id, where, `${field}[${i}]`));
}

function nodeIdField(value: unknown, where: string, field: string): NodeId {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_NODE_ID_LENGTH) {
    throw malformed(where, `field '${field}' must be a member id (1 to ${MAX_NODE_ID_LENGTH} characters), got ${describe(value)}`);
  }
  return value as NodeId;
}

function countField(value: unknown, where: string, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw malformed(where, `field '${field}' must be a non-negative integer, got ${describe(value)}`);
  }
  return value;
}

function booleanField(value: unknown, where: string, field: string): boolean {
  if (typeof value !== 'boolean') throw malformed(where, `field '${field}' must be a boolean, got ${describe(value)}`);
  return value;
}

function bytesField(value: unknown, where: string, field: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw malformed(where, `field '${field}' must be bytes, got ${describe(value)}`);
  // A plain view (not a Buffer) over the received bytes: no copy, and one type for the core to see.
  return value.constructor === Uint8Array ? value : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

function malformed(where: string, problem: string): MalformedMessageError {
  return new MalformedMessageError(`${where} ${problem}`);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value instanceof Uint8Array) return `${value.byteLength} bytes`;
  switch (typeof value) {
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value);
    case 'string':
      return value.length > 40 ? `a string of ${value.length} characters` : JSON.stringify(value);
    default:
      return typeof value;
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// Keys and values as the client library hands them out, and the conversions at
// the edge: what a caller passes in (string or bytes), how a key travels in a
// path, and how a key-value object is read back from msgpack or JSON.

/** A key or a value as a caller gives it: text (sent as UTF-8) or raw bytes. */
export type Bytes = string | Uint8Array;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8');

/** The bytes of a key or value. A Uint8Array is used as is (not copied). */
export function toBytes(v: Bytes): Uint8Array {
  return typeof v === 'string' ? utf8Encoder.encode(v) : v;
}

/** A copy that owns its memory (msgpack decoding hands out views into the whole response). */
function ownBytes(v: Uint8Array): Uint8Array {
  return new Uint8Array(v);
}

/** A key with its value and MVCC metadata, as stored at some revision. */
export class KeyValue {
  constructor(
    readonly key: Uint8Array,
    readonly value: Uint8Array,
    /** Revision of the key's last creation. */
    readonly createRevision: number,
    /** Revision of the key's last modification. */
    readonly modRevision: number,
    /** Number of modifications since creation (1 after the create). */
    readonly version: number,
    /** Lease the key is attached to, 0 when none. */
    readonly lease: number,
  ) {}

  /** The value as UTF-8 text (invalid sequences become U+FFFD). */
  text(): string {
    return utf8Decoder.decode(this.value);
  }

  /** The key as UTF-8 text (invalid sequences become U+FFFD). */
  keyText(): string {
    return utf8Decoder.decode(this.key);
  }

  /** The value parsed as JSON text. */
  json<T = unknown>(): T {
    return JSON.parse(this.text()) as T;
  }
}

// RFC 3986 unreserved characters, plus '/', which keys may hold and the server splits on nothing.
const PATH_SAFE = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/') PATH_SAFE[c.charCodeAt(0)] = 1;
const HEX = '0123456789ABCDEF';
const DOT = 0x2e;
const SLASH = 0x2f;

/** True when bytes[start, end) is a `.` or `..` path segment, which URL handling anywhere on the way may collapse. */
function isDotSegment(bytes: Uint8Array, start: number, end: number): boolean {
  const length = end - start;
  return (length === 1 || length === 2) && bytes[start] === DOT && bytes[end - 1] === DOT;
}

/**
 * A key as it goes in a path after `/v1/kv/` or `/v1/watch/`: every byte
 * percent-encoded except unreserved characters and `/`. The dots of a `.` or
 * `..` segment are encoded too, so nothing on the way normalises the path.
 */
export function encodeKeyPath(key: Uint8Array): string {
  let out = '';
  let segmentStart = 0;
  for (let i = 0; i <= key.length; i++) {
    if (i < key.length && key[i] !== SLASH) continue;
    const dotted = isDotSegment(key, segmentStart, i);
    for (let j = segmentStart; j < i; j++) {
      const b = key[j];
      out += PATH_SAFE[b] && !dotted ? String.fromCharCode(b) : `%${HEX[b >> 4]}${HEX[b & 15]}`;
    }
    if (i < key.length) out += '/';
    segmentStart = i + 1;
  }
  return out;
}

/**
 * Bytes of a key or value field in a response: raw bytes (msgpack), or a string
 * that is base64 when its object says `"encoding":"base64"` and UTF-8 text otherwise (JSON).
 */
export function wireBytes(v: unknown, base64: boolean, what: string): Uint8Array {
  if (v instanceof Uint8Array) return ownBytes(v);
  if (typeof v !== 'string') throw new TypeError(`${what} is neither bytes nor a string`);
  return base64 ? new Uint8Array(Buffer.from(v, 'base64')) : utf8Encoder.encode(v);
}

/** An integer field of a response (msgpack may carry 64-bit ones as bigint). Absent is 0. */
export function wireNumber(v: unknown, what: string): number {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  if (v === undefined) return 0;
  throw new TypeError(`${what} is not an integer`);
}

/** A key-value object of a response (msgpack with bytes, or JSON with text/base64). Throws TypeError when malformed. */
export function decodeKeyValue(raw: unknown): KeyValue {
  if (typeof raw !== 'object' || raw === null) throw new TypeError('key-value is not an object');
  const o = raw as Record<string, unknown>;
  const base64 = o.encoding === 'base64';
  return new KeyValue(
    wireBytes(o.key, base64, 'kv.key'),
    // keysOnly answers may leave the value out.
    o.value === undefined ? new Uint8Array(0) : wireBytes(o.value, base64, 'kv.value'),
    wireNumber(o.createRevision, 'kv.createRevision'),
    wireNumber(o.modRevision, 'kv.modRevision'),
    wireNumber(o.version, 'kv.version'),
    wireNumber(o.lease, 'kv.lease'),
  );
}

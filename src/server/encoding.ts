// How API objects travel (API.md "Conventions"): JSON with keys and values as
// UTF-8 text, or as base64 with "encoding":"base64" on their object when the
// bytes are not UTF-8 or the request asks for it; msgpack with raw bytes. Also
// the decoding of request bodies (JSON or msgpack) and of keys in paths.
// Pure: no I/O.

import { Packr } from 'msgpackr';
import { InvalidArgumentError } from '../errors.js';
import type { KeyValue } from './backend.js';

const packr = new Packr({ useRecords: false });
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

export const JSON_TYPE = 'application/json';
export const MSGPACK_TYPE = 'application/msgpack';

/** How a response is encoded: msgpack (raw bytes), or JSON (text, base64 when needed or when `base64` asks for it always). */
export type ResponseFormat = { readonly msgpack: true } | { readonly msgpack: false; readonly base64: boolean };

/** The format a request asks for: msgpack on `Accept: application/msgpack`, else JSON (base64 with `?encoding=base64`). */
export function responseFormat(accept: string | undefined, base64: boolean): ResponseFormat {
  if (accept !== undefined && accept.toLowerCase().includes(MSGPACK_TYPE)) return { msgpack: true };
  return { msgpack: false, base64 };
}

function base64Of(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** The bytes as UTF-8 text, or undefined when they are not valid UTF-8. */
function utf8Text(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * Byte strings of one JSON object: all text when every one is valid UTF-8 (and
 * base64 was not asked for), else all base64, so a reader needs one rule per
 * object (`"encoding":"base64"` covers every byte field in it).
 */
export function jsonByteStrings(fields: readonly Uint8Array[], base64: boolean): { readonly texts: string[]; readonly base64: boolean } {
  if (!base64) {
    const texts: string[] = [];
    for (const bytes of fields) {
      const text = utf8Text(bytes);
      if (text === undefined) break;
      texts.push(text);
    }
    if (texts.length === fields.length) return { texts, base64: false };
  }
  return { texts: fields.map(base64Of), base64: true };
}

/** A key-value object for a response: `{key, value, createRevision, modRevision, version, lease}` (+ `encoding` in JSON when base64). */
export function wireKv(kv: KeyValue, format: ResponseFormat): Record<string, unknown> {
  const meta = { createRevision: kv.createRevision, modRevision: kv.modRevision, version: kv.version, lease: kv.lease };
  if (format.msgpack) return { key: kv.key, value: kv.value, ...meta };
  const { texts, base64 } = jsonByteStrings([kv.key, kv.value], format.base64);
  return { key: texts[0], value: texts[1], ...meta, ...(base64 ? { encoding: 'base64' } : {}) };
}

/** A list of keys (a lease's) for a response object: raw in msgpack; in JSON text, or base64 with `encoding` beside the list. */
export function wireKeys(keys: readonly Uint8Array[], format: ResponseFormat): { keys: unknown[]; encoding?: 'base64' } {
  if (format.msgpack) return { keys: [...keys] };
  const { texts, base64 } = jsonByteStrings(keys, format.base64);
  return base64 ? { keys: texts, encoding: 'base64' } : { keys: texts };
}

/** A response body in its format, with its content type. */
export function encodeResponse(body: unknown, format: ResponseFormat): { readonly payload: Buffer | string; readonly contentType: string } {
  if (format.msgpack) return { payload: packr.pack(body), contentType: MSGPACK_TYPE };
  return { payload: JSON.stringify(body), contentType: `${JSON_TYPE}; charset=utf-8` };
}

function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0].trim().toLowerCase();
}

/**
 * A structured request body (txn, leases, members, compact, leader transfer):
 * msgpack with `Content-Type: application/msgpack`, JSON with
 * `application/json` (or any `+json` type, or no type at all). Any other type,
 * an empty body, or malformed bytes are an InvalidArgument.
 */
export function decodeRequestBody(raw: Uint8Array | undefined, contentType: string | undefined): unknown {
  if (raw === undefined || raw.length === 0) throw new InvalidArgumentError('this request needs a JSON (or msgpack) body');
  const type = mediaType(contentType);
  if (type === MSGPACK_TYPE || type === 'application/x-msgpack') {
    try {
      return packr.unpack(raw);
    } catch {
      throw new InvalidArgumentError('the body is not valid msgpack');
    }
  }
  if (type !== '' && type !== JSON_TYPE && !type.endsWith('+json')) {
    throw new InvalidArgumentError(`the body must be ${JSON_TYPE} or ${MSGPACK_TYPE} (got ${JSON.stringify(type)})`);
  }
  let text: string;
  try {
    text = strictUtf8.decode(raw);
  } catch {
    throw new InvalidArgumentError('the JSON body is not valid UTF-8');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new InvalidArgumentError(`the body is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * Bytes of a key or value in a request body: a string is UTF-8 text, or base64
 * when its object says `"encoding":"base64"`; msgpack bodies may carry raw bytes.
 */
export function bodyBytes(value: unknown, base64: boolean, what: string): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value !== 'string') throw new InvalidArgumentError(`${what} must be a string${base64 ? ' (base64)' : ''} or bytes`);
  if (!base64) return utf8Encoder.encode(value);
  if (value.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw new InvalidArgumentError(`${what} is not valid base64`);
  return new Uint8Array(Buffer.from(value, 'base64'));
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/**
 * A key as it travels in a path, percent-decoded to bytes. Any byte may be
 * escaped (`%FF` is the byte 0xff, not necessarily UTF-8, which is why this is
 * not decodeURIComponent); other characters stand for their UTF-8 bytes.
 */
export function decodeKeyPath(encoded: string): Uint8Array {
  const source = utf8Encoder.encode(encoded);
  const out = new Uint8Array(source.length);
  let length = 0;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c !== 0x25) {
      out[length++] = c;
      continue;
    }
    const high = i + 1 < source.length ? hexDigit(source[i + 1]) : -1;
    const low = i + 2 < source.length ? hexDigit(source[i + 2]) : -1;
    if (high < 0 || low < 0) throw new InvalidArgumentError(`malformed percent-escape in the key: ${JSON.stringify(Buffer.from(source.subarray(i, i + 3)).toString('latin1'))}`);
    out[length++] = (high << 4) | low;
    i += 2;
  }
  return out.slice(0, length);
}

import { Packr } from 'msgpackr';
import { InvalidArgumentError } from '../errors.js';
import type { KeyValue } from './backend.js';

// How API objects travel: JSON with text (or base64) keys and values, or msgpack
// with raw bytes. Also the strict parsing of query parameters and of keys in paths.

const packr = new Packr({ useRecords: false });
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

export type Format = { readonly msgpack: true } | { readonly msgpack: false; readonly base64: boolean };

/** Text when the bytes are valid UTF-8 (and base64 was not asked for), else base64. */
function textOrBase64(bytes: Uint8Array, base64: boolean): { text: string; base64: boolean } {
  if (!base64) {
    try {
      return { text: strictUtf8.decode(bytes), base64: false };
    } catch {
      // not UTF-8: fall through
    }
  }
  return { text: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'), base64: true };
}

/** A key-value object for the response: JSON keeps API.md's text/base64 rule, msgpack keeps bytes. */
export function wireKv(kv: KeyValue, format: Format): Record<string, unknown> {
  const base = { createRevision: kv.createRevision, modRevision: kv.modRevision, version: kv.version, lease: kv.lease };
  if (format.msgpack) return { key: kv.key, value: kv.value, ...base };
  const key = textOrBase64(kv.key, format.base64);
  const value = textOrBase64(kv.value, format.base64);
  const encoded = key.base64 || value.base64;
  // With "encoding":"base64" both key and value are base64, so a reader needs one rule per object.
  return {
    key: encoded && !key.base64 ? Buffer.from(kv.key).toString('base64') : key.text,
    value: encoded && !value.base64 ? Buffer.from(kv.value).toString('base64') : value.text,
    ...base,
    ...(encoded ? { encoding: 'base64' } : {}),
  };
}

export function encodeBody(body: unknown, format: Format): Buffer | string {
  return format.msgpack ? packr.pack(body) : JSON.stringify(body);
}

export function decodeBody(raw: Buffer, contentType: string | undefined): unknown {
  if (raw.length === 0) return {};
  if (contentType?.includes('application/msgpack')) {
    try {
      return packr.unpack(raw);
    } catch {
      throw new InvalidArgumentError('body is not valid msgpack');
    }
  }
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch {
    throw new InvalidArgumentError('body is not valid JSON');
  }
}

/** Percent-decodes a path segment to bytes (any byte, not just valid UTF-8). */
export function decodePathBytes(encoded: string): Uint8Array {
  const out: number[] = [];
  const utf8 = Buffer.from(encoded, 'utf8');
  for (let i = 0; i < utf8.length; i++) {
    const c = utf8[i];
    if (c === 0x25) {
      const hex = utf8.subarray(i + 1, i + 3).toString('latin1');
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new InvalidArgumentError(`malformed percent-escape in key near "%${hex}"`);
      out.push(parseInt(hex, 16));
      i += 2;
    } else out.push(c);
  }
  return Uint8Array.from(out);
}

type Query = Record<string, string | string[] | undefined>;

function single(q: Query, name: string): string | undefined {
  const v = q[name];
  if (Array.isArray(v)) throw new InvalidArgumentError(`parameter ${name} is given more than once`);
  return v;
}

export function queryBool(q: Query, name: string): boolean {
  const v = single(q, name);
  if (v === undefined) return false;
  if (v === '' || v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new InvalidArgumentError(`parameter ${name} must be true or false (got ${JSON.stringify(v)})`);
}

export function queryInt(q: Query, name: string): number | undefined {
  const v = single(q, name);
  if (v === undefined) return undefined;
  if (!/^\d{1,15}$/.test(v)) throw new InvalidArgumentError(`parameter ${name} must be a non-negative integer (got ${JSON.stringify(v)})`);
  return Number(v);
}

/** Refuses parameters a route does not know, so a typo never silently changes the meaning of a request. */
export function onlyParams(q: Query, allowed: readonly string[]): void {
  for (const name of Object.keys(q)) {
    if (!allowed.includes(name)) throw new InvalidArgumentError(`unknown parameter ${JSON.stringify(name.slice(0, 64))} (allowed: ${allowed.join(', ') || 'none'})`);
  }
  // The only encoding there is: anything else (or it twice) would silently answer in text.
  const encoding = single(q, 'encoding');
  if (encoding !== undefined && encoding !== 'base64') throw new InvalidArgumentError(`parameter encoding must be base64 (got ${JSON.stringify(encoding.slice(0, 64))})`);
}

/** Bytes from a JSON body field: a string is UTF-8 text unless the object says "encoding":"base64"; msgpack bodies may carry raw bytes. */
export function bodyBytes(v: unknown, base64: boolean, what: string): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (typeof v !== 'string') throw new InvalidArgumentError(`${what} must be a string`);
  if (!base64) return new TextEncoder().encode(v);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw new InvalidArgumentError(`${what} is not valid base64`);
  return Uint8Array.from(Buffer.from(v, 'base64'));
}

// Bodies on the wire. Requests with structure (txn, leases, members) go as
// msgpack and responses are asked for as msgpack (`Accept: application/msgpack`):
// keys and values then travel as raw bytes, with no text/base64 guessing and no
// base64 inflation. JSON is still read when a server (or something in front of
// it) answers JSON, using API.md's `"encoding":"base64"` rule.

import type { IncomingHttpHeaders } from 'node:http';
import { Packr } from 'msgpackr';
import { errorFromResponse, InternalError, type CairnClientError, type ServerErrorBody } from './errors.js';
import type { HttpResponse } from './http.js';
import { decodeKeyValue, type KeyValue } from './key-value.js';

const packr = new Packr({ useRecords: false });

export const MSGPACK = 'application/msgpack';

export function encodeMsgpack(body: unknown): Uint8Array {
  return packr.pack(body);
}

function contentType(headers: IncomingHttpHeaders): string {
  const v = headers['content-type'];
  return (Array.isArray(v) ? v[0] : v) ?? '';
}

/** The decoded body of a response, msgpack or JSON by its content type; undefined when empty or neither. Throws on a malformed body. */
export function decodeBody(response: HttpResponse): unknown {
  if (response.body.length === 0) return undefined;
  const type = contentType(response.headers);
  if (type.includes(MSGPACK)) return packr.unpack(response.body);
  if (type.includes('json')) return JSON.parse(response.body.toString('utf8')) as unknown;
  return undefined;
}

/** The object body of a successful response; a body that is not one is the server's failure. */
export function decodeObject(response: HttpResponse, endpoint: string): Record<string, unknown> {
  let body: unknown;
  try {
    body = decodeBody(response);
  } catch (error) {
    throw new InternalError(`unreadable response from ${endpoint}`, undefined, { status: response.status, cause: error });
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InternalError(`response from ${endpoint} is not an object`, undefined, { status: response.status });
  }
  return body as Record<string, unknown>;
}

/** The typed error of a response with an error status. */
export function errorFromHttp(response: HttpResponse, endpoint: string): CairnClientError {
  let error: ServerErrorBody | undefined;
  let kv: KeyValue | undefined;
  try {
    const body = decodeBody(response) as { error?: ServerErrorBody & { kv?: unknown } } | undefined;
    if (typeof body?.error === 'object' && body.error !== null) {
      error = body.error;
      if (body.error.kv !== undefined && body.error.kv !== null) kv = decodeKeyValue(body.error.kv);
    }
  } catch {
    // An unreadable error body still has its status, which says enough.
  }
  return errorFromResponse(response.status, error, kv, endpoint);
}

// Keys travel in the path after /v1/kv/ or /v1/watch/, percent-encoded, and may
// be any bytes, so the path need not decode to valid UTF-8 (`%FF`), which the
// router refuses with a 400 of its own. The app therefore routes key paths on a
// fixed placeholder (rewriteKeyUrl) and handlers read the key from the URL as
// the client sent it (request.originalUrl).

import type { FastifyRequest } from 'fastify';
import { InvalidArgumentError, TooLargeError } from '../errors.js';
import { decodeKeyPath } from './encoding.js';

export const KV_PATH = '/v1/kv/';
export const WATCH_PATH = '/v1/watch/';
const KEY_PATHS = [KV_PATH, WATCH_PATH] as const;

/** The URL of a key route with its key path replaced by a placeholder (the query kept); other URLs unchanged. For fastify's rewriteUrl. */
export function rewriteKeyUrl(url: string): string {
  const route = KEY_PATHS.find((prefix) => url.startsWith(prefix));
  if (route === undefined) return url;
  const queryStart = url.indexOf('?');
  return `${route}key${queryStart < 0 ? '' : url.slice(queryStart)}`;
}

/** The path of a request target (origin form or absolute form), without its query. */
function pathOf(url: string): string {
  let path = url;
  if (!path.startsWith('/')) {
    const scheme = path.indexOf('://');
    const slash = scheme < 0 ? -1 : path.indexOf('/', scheme + 3);
    path = slash < 0 ? '/' : path.slice(slash);
  }
  const end = path.search(/[?#]/);
  return end < 0 ? path : path.slice(0, end);
}

export interface KeyRules {
  readonly maxKeyBytes: number;
  /** An empty key is allowed (with prefix: every key). */
  readonly allowEmpty: boolean;
}

/** The key of a key route, percent-decoded to bytes: InvalidArgument when malformed or empty, TooLarge past the limit. */
export function requestKey(request: FastifyRequest, routePath: string, rules: KeyRules): Uint8Array {
  const path = pathOf(request.originalUrl);
  if (!path.startsWith(routePath)) throw new InvalidArgumentError(`the key must follow ${routePath} in the path`);
  const encoded = path.slice(routePath.length);
  // Three characters per byte at most: refuse a path that cannot fit before decoding it.
  if (encoded.length > rules.maxKeyBytes * 3) throw new TooLargeError(`the key is longer than ${rules.maxKeyBytes} bytes`);
  const key = decodeKeyPath(encoded);
  if (key.length > rules.maxKeyBytes) throw new TooLargeError(`the key is ${key.length} bytes; the limit is ${rules.maxKeyBytes}`);
  if (key.length === 0 && !rules.allowEmpty) throw new InvalidArgumentError('the key must not be empty (add ?prefix=true to address every key)');
  return key;
}

const lossyUtf8 = new TextDecoder('utf-8');

/** A key for a message: quoted text, cut after 100 characters. */
export function describeKey(key: Uint8Array): string {
  const text = lossyUtf8.decode(key.subarray(0, 400));
  return JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}…` : text);
}

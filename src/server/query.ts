// Strict query parameters: a route names the parameters it knows and anything
// else is refused, so a typo (`?prefx=true`) never silently changes what a
// request does. Values are checked before the backend sees the request.

import { InvalidArgumentError } from '../errors.js';

/** A parsed query string: repeated names give arrays. */
export type Query = Readonly<Record<string, string | string[] | undefined>>;

/** Refuses parameters the route does not know. */
export function onlyParams(query: Query, allowed: readonly string[]): void {
  for (const name of Object.keys(query)) {
    if (!allowed.includes(name)) {
      throw new InvalidArgumentError(`unknown query parameter ${JSON.stringify(name)} (this route takes ${allowed.length > 0 ? allowed.join(', ') : 'none'})`);
    }
  }
}

function single(query: Query, name: string): string | undefined {
  const value = query[name];
  if (Array.isArray(value)) throw new InvalidArgumentError(`query parameter ${name} is given more than once`);
  return value;
}

/** A flag: absent is false; `true`, `1` or a bare `?name` is true; `false` or `0` is false. */
export function queryFlag(query: Query, name: string): boolean {
  const value = single(query, name);
  if (value === undefined || value === 'false' || value === '0') return false;
  if (value === '' || value === 'true' || value === '1') return true;
  throw new InvalidArgumentError(`query parameter ${name} must be true or false (got ${JSON.stringify(value)})`);
}

/** A non-negative integer (decimal digits only, at most 2^53 - 1), or undefined when absent. */
export function queryCount(query: Query, name: string): number | undefined {
  const value = single(query, name);
  if (value === undefined) return undefined;
  return parseCount(value, `query parameter ${name}`);
}

/** A non-negative safe integer written in decimal digits; InvalidArgument otherwise. */
export function parseCount(text: string, what: string): number {
  const n = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`${what} must be a non-negative integer (got ${JSON.stringify(text)})`);
  return n;
}

/** `?encoding=base64` (the only value there is): JSON keys and values always as base64. */
export function queryBase64(query: Query): boolean {
  const value = single(query, 'encoding');
  if (value === undefined) return false;
  if (value === 'base64') return true;
  throw new InvalidArgumentError(`query parameter encoding must be base64 (got ${JSON.stringify(value)})`);
}

// Strict reading of structured request bodies (decoded JSON or msgpack): each
// object names the fields it knows, and every field has the type it must have.
// Anything else is an InvalidArgument naming the field.

import type { FastifyRequest } from 'fastify';
import { InvalidArgumentError, TooLargeError } from '../errors.js';
import { decodeRequestBody } from './encoding.js';

export type Fields = Readonly<Record<string, unknown>>;

/** `value` as an object holding only `allowed` fields. */
export function objectWith(value: unknown, allowed: readonly string[], what: string): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw new InvalidArgumentError(`${what} must be an object`);
  }
  for (const name of Object.keys(value)) {
    if (!allowed.includes(name)) throw new InvalidArgumentError(`${what} has an unknown field ${JSON.stringify(name)} (known: ${allowed.join(', ')})`);
  }
  return value as Fields;
}

/** The request's body (JSON or msgpack) as an object holding only `allowed` fields. */
export function bodyObject(request: FastifyRequest, allowed: readonly string[]): Fields {
  const raw = request.body instanceof Uint8Array ? request.body : undefined;
  return objectWith(decodeRequestBody(raw, request.headers['content-type']), allowed, 'the body');
}

/** An integer field (msgpack may carry 64-bit integers as bigint) within [min, max]. */
export function integerField(value: unknown, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = typeof value === 'bigint' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new InvalidArgumentError(`${what} must be an integer from ${min} to ${max} (got ${describe(value)})`);
  }
  return n;
}

/** An optional boolean field (absent is false). */
export function flagField(value: unknown, what: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new InvalidArgumentError(`${what} must be true or false (got ${describe(value)})`);
  return value;
}

/** An optional `encoding` field: only "base64" exists. */
export function base64Field(value: unknown, what: string): boolean {
  if (value === undefined) return false;
  if (value !== 'base64') throw new InvalidArgumentError(`${what} must be "base64" when given (got ${describe(value)})`);
  return true;
}

/** A list field (absent is empty); more than `max` items is TooLarge. */
export function listField(value: unknown, what: string, max: number): readonly unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new InvalidArgumentError(`${what} must be a list`);
  if (value.length > max) throw new TooLargeError(`${what} has ${value.length} items; the limit is ${max}`);
  return value;
}

function describe(value: unknown): string {
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (typeof value === 'bigint') return `${value}`;
  const text = JSON.stringify(value) ?? typeof value;
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

import type { ConnectionOptions } from 'node:tls';
import { Pool } from 'undici';

// What the `cairn bench` load generators share: their keys and their connections.

/** The i-th benchmark key, padded to `size` bytes. */
export function benchKey(i: number, size: number, prefix = 'bench/'): string {
  const base = `${prefix}${i.toString(36)}`;
  return base.length >= size ? base : base + 'k'.repeat(size - base.length);
}

/** Kept-alive connection pools, one per endpoint, enough for `clients` requests at once. */
export function benchPools(endpoints: readonly string[], clients: number, tls: ConnectionOptions | undefined): Pool[] {
  return endpoints.map((url) => new Pool(url, { connections: Math.ceil(clients / endpoints.length) + 1, pipelining: 1, ...(tls ? { connect: tls } : {}) }));
}

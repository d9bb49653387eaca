import { Packr } from 'msgpackr';
import type { SubDb } from '../storage/member-db.js';
import type { KeyValue } from './kv-commands.js';

// The history section of the MVCC store: every version of every key, by
// (revision, sub index), until compaction. Its row layout, reading it for
// watchers and revisions in the past, and compacting it.

const packr = new Packr({ useRecords: false });

/** A version: [key, value, create, mod, version, lease, deleted, prevRev, prevSub]; prev* locate the key's previous version. */
export type HistRow = [Uint8Array, Uint8Array, number, number, number, number, 0 | 1, number, number];

export interface HistoryEvent {
  readonly type: 'put' | 'delete';
  readonly kv: KeyValue;
  readonly prevKv?: KeyValue;
}

export interface HistoryRevision {
  readonly revision: number;
  readonly events: readonly HistoryEvent[];
}

/** History keys: 8-byte big-endian revision then 4-byte sub index, so byte order is revision order. */
export function revKey(revision: number, sub: number): Uint8Array {
  const k = new Uint8Array(12);
  const view = new DataView(k.buffer);
  view.setBigUint64(0, BigInt(revision));
  view.setUint32(8, sub);
  return k;
}

export function encodeRow(row: HistRow): Uint8Array {
  return packr.pack(row);
}

export function decodeRow(bytes: Uint8Array): HistRow {
  return packr.unpack(bytes) as HistRow;
}

export function rowKv(row: HistRow): KeyValue {
  return { key: row[0], value: row[1], createRevision: row[2], modRevision: row[3], version: row[4], lease: row[5] };
}

const latin1 = (key: Uint8Array): string => Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');

/**
 * Revisions [from, to] touching the keys `match` accepts, at most `maxRevisions`,
 * for watchers catching up. prevKv is looked up when asked.
 */
export async function readHistory(
  hist: SubDb,
  from: number,
  to: number,
  match: (key: Uint8Array) => boolean,
  withPrev: boolean,
  maxRevisions: number,
): Promise<HistoryRevision[]> {
  const out: HistoryRevision[] = [];
  let current: { revision: number; events: HistoryEvent[] } | undefined;
  for await (const [k, v] of hist.iterator({ gte: revKey(from, 0), lt: revKey(to + 1, 0) })) {
    const revision = Number(new DataView(k.buffer, k.byteOffset, 8).getBigUint64(0));
    if (!current || current.revision !== revision) {
      if (current && current.events.length > 0) out.push(current);
      if (out.length >= maxRevisions) break;
      current = { revision, events: [] };
    }
    const row = decodeRow(v);
    if (!match(row[0])) continue;
    let prevKv: KeyValue | undefined;
    if (withPrev && row[7] > 0) {
      const prev = await hist.get(revKey(row[7], row[8]));
      if (prev) prevKv = rowKv(decodeRow(prev));
    }
    current.events.push({ type: row[6] === 1 ? 'delete' : 'put', kv: rowKv(row), ...(prevKv ? { prevKv } : {}) });
  }
  if (current && current.events.length > 0 && out.length < maxRevisions) out.push(current);
  return out;
}

/** The latest version of each key at or below `at` (deleted keys left out), in key order. */
export async function readAt(hist: SubDb, at: number, inRange: (key: Uint8Array) => boolean): Promise<KeyValue[]> {
  const latest = new Map<string, HistRow>();
  for await (const v of hist.values({ lt: revKey(at + 1, 0) })) {
    const row = decodeRow(v);
    if (inRange(row[0])) latest.set(latin1(row[0]), row);
  }
  return [...latest.values()]
    .filter((r) => r[6] === 0)
    .map(rowKv)
    .sort((a, b) => Buffer.compare(a.key, b.key));
}

/** Drops versions below `revision`, keeping each key's version current at it, in batches of at most 1000 deletions. */
export async function compactHistoryBelow(hist: SubDb, revision: number): Promise<void> {
  const keep = new Map<string, Uint8Array>();
  const drop: Uint8Array[] = [];
  for await (const [k, v] of hist.iterator({ lt: revKey(revision, 0) })) {
    const row = decodeRow(v);
    const key = latin1(row[0]);
    const before = keep.get(key);
    if (before) drop.push(before);
    if (row[6] === 1) {
      drop.push(k);
      keep.delete(key);
    } else keep.set(key, k);
    if (drop.length >= 1000) await hist.batch(drop.splice(0).map((key) => ({ type: 'del' as const, key })));
  }
  if (drop.length > 0) await hist.batch(drop.map((key) => ({ type: 'del' as const, key })));
}

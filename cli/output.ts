import { isUtf8 } from 'node:buffer';
import type { KeyValue, Member } from '../src/client/index.js';
import { cellText, formatTable, type Column } from './table.js';

// How commands print, for `-o simple|json|table`:
// - simple: etcdctl's lines (a key, then its value as raw bytes, so piping is binary-safe);
// - json: one JSON document per command on one line (`watch`: one per event, NDJSON),
//   key-values shaped as in the HTTP API (text, or base64 with "encoding":"base64");
// - table: whatever a command lists (key-values, members, endpoints, leases, bench
//   results) is a table with a header row; its other lines (OK, a count, a stream of
//   watch events) are printed as in simple.

export const OUTPUT_FORMATS = ['simple', 'json', 'table'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export function write(text: string | Uint8Array): void {
  process.stdout.write(text);
}

export function writeLine(text: string): void {
  process.stdout.write(text + '\n');
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}

/** A key-value as a JSON object: API.md's shape; key and value in base64 (and "encoding") when either is not UTF-8. */
export function kvJson(kv: KeyValue): Record<string, unknown> {
  const base64 = !isUtf8(kv.key) || !isUtf8(kv.value);
  const text = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString(base64 ? 'base64' : 'utf8');
  return {
    key: text(kv.key),
    value: text(kv.value),
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    version: kv.version,
    lease: kv.lease,
    ...(base64 ? { encoding: 'base64' } : {}),
  };
}

/** Bytes for a person reading a table or a message: escaped text, or base64 (marked) when not UTF-8. */
export function displayBytes(bytes: Uint8Array): string {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return isUtf8(buffer) ? cellText(buffer.toString('utf8')) : `base64:${buffer.toString('base64')}`;
}

export interface KvPrintOptions {
  /** Keys and metadata only. */
  readonly keysOnly?: boolean;
  /** Values only (simple: one per line; table: one column). */
  readonly valueOnly?: boolean;
}

/** Key-values as simple lines or a table (json callers print their own document with kvJson). */
export function printKvs(kvs: readonly KeyValue[], format: OutputFormat, options: KvPrintOptions = {}): void {
  if (format === 'table') {
    if (options.valueOnly) {
      write(formatTable([{ title: 'VALUE' }], kvs.map((kv) => [displayBytes(kv.value)])));
      return;
    }
    const columns: Column[] = [
      { title: 'KEY' },
      ...(options.keysOnly ? [] : [{ title: 'VALUE' }]),
      { title: 'CREATE_REV', align: 'right' },
      { title: 'MOD_REV', align: 'right' },
      { title: 'VERSION', align: 'right' },
      { title: 'LEASE', align: 'right' },
    ];
    const rows = kvs.map((kv) => [
      displayBytes(kv.key),
      ...(options.keysOnly ? [] : [displayBytes(kv.value)]),
      kv.createRevision,
      kv.modRevision,
      kv.version,
      kv.lease,
    ]);
    write(formatTable(columns, rows));
    return;
  }
  for (const kv of kvs) {
    if (!options.valueOnly) {
      write(kv.key);
      write('\n');
    }
    if (!options.keysOnly) {
      write(kv.value);
      write('\n');
    }
  }
}

export function memberJson(m: Member): Record<string, unknown> {
  return { id: m.id, name: m.name, peerUrls: [...m.peerUrls], clientUrls: [...m.clientUrls], isLearner: m.isLearner };
}

/** Members: simple `id, voter|learner, name, peer URLs, client URLs` lines, or a table. */
export function printMembers(members: readonly Member[], format: OutputFormat): void {
  if (format === 'json') {
    printJson({ members: members.map(memberJson) });
  } else if (format === 'table') {
    const columns: Column[] = [{ title: 'ID' }, { title: 'NAME' }, { title: 'PEER URLS' }, { title: 'CLIENT URLS' }, { title: 'LEARNER' }];
    write(formatTable(columns, members.map((m) => [m.id, m.name || '(unstarted)', m.peerUrls.join(','), m.clientUrls.join(','), m.isLearner])));
  } else {
    for (const m of members) writeLine(`${m.id}, ${m.isLearner ? 'learner' : 'voter'}, ${m.name || '(unstarted)'}, ${m.peerUrls.join(',')}, ${m.clientUrls.join(',')}`);
  }
}

/** Bytes as a person reads a size: 1.5 MB. */
export function humanBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

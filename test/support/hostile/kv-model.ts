// A plain model of the key-value API (a Map per revision) for model-based tests:
// what put, delete, range and txn must answer, in etcd's semantics as API.md states them.

import type { KeyValue } from '../../../src/kv/kv-commands.js';

/** A stored key as the API answers it (the model shares the type, not the logic). */
export type ModelKv = KeyValue;

export type ModelCompare = { key: Uint8Array; target: 'value'; op: '=' | '!=' | '<' | '>'; value: Uint8Array } | { key: Uint8Array; target: 'version' | 'createRevision' | 'modRevision' | 'lease'; op: '=' | '!=' | '<' | '>'; value: number };
export type ModelOp = { get: { key: Uint8Array; prefix: boolean } } | { put: { key: Uint8Array; value: Uint8Array } } | { delete: { key: Uint8Array; prefix: boolean } };
export type ModelOpResult = { get: { kvs: ModelKv[]; count: number } } | { put: { prevKv?: ModelKv } } | { delete: { deleted: number } };

export const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** Byte order (hex of bytes sorts as the bytes do). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function startsWith(key: Uint8Array, prefix: Uint8Array): boolean {
  return key.length >= prefix.length && Buffer.from(key.subarray(0, prefix.length)).equals(Buffer.from(prefix));
}

/** The store's keys at every revision since `startRevision` (none of them in this model's keyspace before it). */
export class KvModel {
  revision: number;
  private live = new Map<string, ModelKv>();
  private readonly past = new Map<number, Map<string, ModelKv>>();

  constructor(readonly startRevision: number) {
    this.revision = startRevision;
    this.past.set(startRevision, new Map());
  }

  get(key: Uint8Array): ModelKv | undefined {
    return this.live.get(hex(key));
  }

  /** Keys equal to `key`, or starting with it, in byte order, as of `revision` (current when absent). */
  range(key: Uint8Array, prefix: boolean, revision?: number): ModelKv[] {
    const state = revision === undefined || revision >= this.revision ? this.live : this.past.get(revision);
    if (state === undefined) throw new Error(`model has no revision ${revision} (it starts at ${this.startRevision})`);
    const kvs = prefix ? [...state.values()].filter((kv) => startsWith(kv.key, key)) : [state.get(hex(key))].filter((kv): kv is ModelKv => kv !== undefined);
    return kvs.sort((a, b) => compareBytes(a.key, b.key));
  }

  /** Runs `write` as one transaction: it takes the next revision only if it changed a key. */
  private transaction<T>(write: (revision: number, changed: () => void) => T): T {
    let changed = false;
    const next = new Map(this.live);
    const saved = this.live;
    this.live = next;
    const result = write(this.revision + 1, () => (changed = true));
    if (changed) {
      this.revision += 1;
      this.past.set(this.revision, new Map(this.live));
    } else {
      this.live = saved;
    }
    return result;
  }

  private putNow(key: Uint8Array, value: Uint8Array, revision: number): ModelKv | undefined {
    const prev = this.live.get(hex(key));
    this.live.set(hex(key), { key, value, createRevision: prev ? prev.createRevision : revision, modRevision: revision, version: (prev?.version ?? 0) + 1, lease: 0 });
    return prev;
  }

  private deleteNow(key: Uint8Array, prefix: boolean): ModelKv[] {
    const victims = this.range(key, prefix);
    for (const kv of victims) this.live.delete(hex(kv.key));
    return victims;
  }

  put(key: Uint8Array, value: Uint8Array): ModelKv | undefined {
    return this.transaction((revision, changed) => {
      changed();
      return this.putNow(key, value, revision);
    });
  }

  delete(key: Uint8Array, prefix: boolean): ModelKv[] {
    return this.transaction((_revision, changed) => {
      const victims = this.deleteNow(key, prefix);
      if (victims.length > 0) changed();
      return victims;
    });
  }

  private holds(c: ModelCompare): boolean {
    const kv = this.live.get(hex(c.key));
    let order: number;
    if (c.target === 'value') {
      // As in etcd: a value compare on a missing key is false, whatever the operator.
      if (!kv) return false;
      order = compareBytes(kv.value, c.value);
    } else {
      order = (kv ? kv[c.target] : 0) - c.value;
    }
    return c.op === '=' ? order === 0 : c.op === '!=' ? order !== 0 : c.op === '<' ? order < 0 : order > 0;
  }

  /** Applies the ops in order; reads inside see the writes before them. */
  txn(compare: readonly ModelCompare[], success: readonly ModelOp[], failure: readonly ModelOp[]): { succeeded: boolean; responses: ModelOpResult[] } {
    const succeeded = compare.every((c) => this.holds(c));
    return this.transaction((revision, changed) => {
      const responses = (succeeded ? success : failure).map((op): ModelOpResult => {
        if ('get' in op) {
          const kvs = this.range(op.get.key, op.get.prefix);
          return { get: { kvs, count: kvs.length } };
        }
        if ('put' in op) {
          changed();
          const prev = this.putNow(op.put.key, op.put.value, revision);
          return { put: prev ? { prevKv: prev } : {} };
        }
        const deleted = this.deleteNow(op.delete.key, op.delete.prefix).length;
        if (deleted > 0) changed();
        return { delete: { deleted } };
      });
      return { succeeded, responses };
    });
  }
}

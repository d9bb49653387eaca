// A fluent transaction, as etcd's clients write one:
//   await client.transaction()
//     .if(compare.version('lock', '=', 0))
//     .then(op.put('lock', 'me'))
//     .else(op.get('lock'))
//     .commit();
// It builds the same Txn object Client.txn() takes; commit() sends it once.

import type { Bytes } from './key-value.js';
import type { CallOptions, Compare, CompareOp, Txn, TxnOp, TxnResult } from './types.js';

/** Compares for TxnBuilder.if(): on a key's value (bytes or text) or on one of its numbers. */
export const compare = {
  value: (key: Bytes, operator: CompareOp, value: Bytes): Compare => ({ key, target: 'value', op: operator, value }),
  version: (key: Bytes, operator: CompareOp, value: number): Compare => ({ key, target: 'version', op: operator, value }),
  createRevision: (key: Bytes, operator: CompareOp, value: number): Compare => ({ key, target: 'createRevision', op: operator, value }),
  modRevision: (key: Bytes, operator: CompareOp, value: number): Compare => ({ key, target: 'modRevision', op: operator, value }),
  lease: (key: Bytes, operator: CompareOp, value: number): Compare => ({ key, target: 'lease', op: operator, value }),
};

/** Operations for TxnBuilder.then() / else(). */
export const op = {
  get: (key: Bytes, options: { readonly prefix?: boolean } = {}): TxnOp => ({ get: { key, prefix: options.prefix === true } }),
  put: (key: Bytes, value: Bytes, options: { readonly lease?: number } = {}): TxnOp => ({ put: { key, value, ...(options.lease ? { lease: options.lease } : {}) } }),
  delete: (key: Bytes, options: { readonly prefix?: boolean } = {}): TxnOp => ({ delete: { key, prefix: options.prefix === true } }),
};

export class TxnBuilder {
  readonly #compare: Compare[] = [];
  readonly #success: TxnOp[] = [];
  readonly #failure: TxnOp[] = [];
  #committed = false;

  constructor(private readonly send: (txn: Txn, options?: CallOptions) => Promise<TxnResult>) {}

  /** Every compare must hold for `then` to run (none: it always does). */
  if(...compares: Compare[]): this {
    this.#compare.push(...compares);
    return this;
  }

  then(...ops: TxnOp[]): this {
    this.#success.push(...ops);
    return this;
  }

  else(...ops: TxnOp[]): this {
    this.#failure.push(...ops);
    return this;
  }

  /** The transaction as Client.txn() takes it. */
  build(): Txn {
    return { compare: [...this.#compare], success: [...this.#success], failure: [...this.#failure] };
  }

  /** Sends it, once: a builder cannot be committed twice (a retry would be a second write). */
  commit(options?: CallOptions): Promise<TxnResult> {
    if (this.#committed) return Promise.reject(new TypeError('this transaction was already committed; build a new one'));
    this.#committed = true;
    return this.send(this.build(), options);
  }
}

import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import type { Compare, CompareOp, CompareTarget, Txn, TxnOp, TxnOpResult } from '../src/client/index.js';
import { readStdin, withClient, type Globals } from './context.js';
import { UsageError } from './failure.js';
import { kvJson, printJson, printKvs, writeLine, type OutputFormat } from './output.js';

// `cairn txn [FILE]`: a transaction in API.md's JSON, from a file or stdin.
// Keys and values are text, or base64 when their object says "encoding":"base64".
// Exit status 1 when the compare failed (the failure branch ran), so a script can
// test it: `cairn txn < take-lock.json && echo mine`.

type Json = Record<string, unknown>;

const TARGETS: readonly CompareTarget[] = ['value', 'version', 'createRevision', 'modRevision', 'lease'];
const OPS: readonly CompareOp[] = ['=', '!=', '<', '>'];

function object(v: unknown, path: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UsageError(`txn: ${path} must be an object`);
  return v as Json;
}

function bytesField(o: Json, field: string, path: string): string | Uint8Array {
  const v = o[field];
  if (typeof v !== 'string') throw new UsageError(`txn: ${path}.${field} must be a string`);
  return o.encoding === 'base64' ? new Uint8Array(Buffer.from(v, 'base64')) : v;
}

function parseCompare(raw: unknown, path: string): Compare {
  const c = object(raw, path);
  const target = c.target as CompareTarget;
  if (!TARGETS.includes(target)) throw new UsageError(`txn: ${path}.target must be one of ${TARGETS.join(', ')}`);
  const op = c.op as CompareOp;
  if (!OPS.includes(op)) throw new UsageError(`txn: ${path}.op must be one of ${OPS.join(' ')}`);
  if (target !== 'value' && (typeof c.value !== 'number' || !Number.isSafeInteger(c.value))) throw new UsageError(`txn: ${path}.value must be a whole number for target ${target}`);
  const value = target === 'value' ? bytesField(c, 'value', path) : (c.value as number);
  return { key: bytesField(c, 'key', path), target, op, value };
}

function parseOp(raw: unknown, path: string): TxnOp {
  const wrapper = object(raw, path);
  const kinds = Object.keys(wrapper);
  if (kinds.length !== 1 || !['get', 'put', 'delete'].includes(kinds[0])) throw new UsageError(`txn: ${path} must be {"get":{...}}, {"put":{...}} or {"delete":{...}}`);
  const kind = kinds[0];
  const o = object(wrapper[kind], `${path}.${kind}`);
  const key = bytesField(o, 'key', `${path}.${kind}`);
  if (kind === 'put') {
    if (o.lease !== undefined && (typeof o.lease !== 'number' || !Number.isSafeInteger(o.lease))) throw new UsageError(`txn: ${path}.put.lease must be a lease id`);
    return { put: { key, value: bytesField(o, 'value', `${path}.put`), ...(o.lease ? { lease: o.lease as number } : {}) } };
  }
  const prefix = o.prefix === true;
  return kind === 'get' ? { get: { key, prefix } } : { delete: { key, prefix } };
}

function list(body: Json, field: string): unknown[] {
  const v = body[field];
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new UsageError(`txn: ${field} must be a list`);
  return v;
}

/** API.md's JSON transaction, checked; a mistake is a usage error naming where it is. */
export function parseTxn(text: string): Txn {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`txn: not valid JSON (${(err as Error).message})`);
  }
  const body = object(parsed, 'the transaction');
  for (const field of Object.keys(body)) if (!['compare', 'success', 'failure'].includes(field)) throw new UsageError(`txn: unknown field ${JSON.stringify(field)} (expected compare, success, failure)`);
  return {
    compare: list(body, 'compare').map((c, i) => parseCompare(c, `compare[${i}]`)),
    success: list(body, 'success').map((op, i) => parseOp(op, `success[${i}]`)),
    failure: list(body, 'failure').map((op, i) => parseOp(op, `failure[${i}]`)),
  };
}

function responseJson(r: TxnOpResult): unknown {
  if ('get' in r) return { get: { count: r.get.count, kvs: r.get.kvs.map(kvJson) } };
  if ('put' in r) return { put: r.put.prevKv ? { prevKv: kvJson(r.put.prevKv) } : {} };
  return { delete: { deleted: r.delete.deleted } };
}

function printResponse(r: TxnOpResult, output: OutputFormat): void {
  if ('get' in r) printKvs(r.get.kvs, output);
  else if ('put' in r) writeLine('OK');
  else writeLine(String(r.delete.deleted));
}

export function txnCommand(globals: Globals): Command {
  return new Command('txn')
    .description('run a transaction (API.md JSON: {"compare":[...],"success":[...],"failure":[...]}) from FILE or stdin; exit status 1 when the compare failed')
    .argument('[file]', 'a JSON file; omit it to read the transaction from stdin')
    .action((file: string | undefined) =>
      withClient(globals, async (client, g) => {
        let text: string;
        if (file) {
          try {
            text = await readFile(file, 'utf8');
          } catch (err) {
            throw new UsageError(`txn: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
          }
        } else text = (await readStdin('the transaction')).toString('utf8');
        const r = await client.txn(parseTxn(text));
        if (g.output === 'json') printJson({ revision: r.header.revision, succeeded: r.succeeded, responses: r.responses.map(responseJson) });
        else {
          writeLine(r.succeeded ? 'SUCCESS' : 'FAILURE');
          for (const response of r.responses) printResponse(response, g.output);
        }
        if (!r.succeeded) process.exitCode = 1;
      }),
    );
}

import { Command, InvalidArgumentError } from 'commander';
import { CairnClientError, Client, type KeyValue } from '../src/client/index.js';

// cairn get | put | del | watch | status | member list: etcdctl-like commands on
// the client library. Output: `simple` (etcdctl's key/value lines) or `json`.
// Exit status: 0 success, 1 a failed request, 2 bad usage.

export interface GlobalOptions {
  readonly endpoints: string;
  readonly timeout: number;
  readonly output: 'simple' | 'json';
}

function nonNegative(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

function printKv(kv: KeyValue, valueOnly: boolean, output: GlobalOptions['output']): void {
  if (output === 'json') {
    process.stdout.write(JSON.stringify({ key: kv.keyText(), value: kv.text(), createRevision: kv.createRevision, modRevision: kv.modRevision, version: kv.version, lease: kv.lease }) + '\n');
  } else {
    if (!valueOnly) process.stdout.write(kv.keyText() + '\n');
    process.stdout.write(kv.text() + '\n');
  }
}

export async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Runs an action with a client on the global endpoints; a failed request prints its code and exits 1. */
export async function withClient(globals: () => GlobalOptions, action: (client: Client, g: GlobalOptions) => Promise<void>): Promise<void> {
  const g = globals();
  const client = new Client({ endpoints: g.endpoints.split(',').map((s) => s.trim()).filter(Boolean), timeoutMs: g.timeout });
  try {
    await action(client, g);
  } catch (err) {
    if (err instanceof CairnClientError) {
      process.stderr.write(`Error: ${err.code}: ${err.message}\n`);
      process.exitCode = err.code === 'InvalidArgument' ? 2 : 1;
    } else throw err;
  } finally {
    await client.close();
  }
}

export function kvCommands(globals: () => GlobalOptions): Command[] {
  const get = new Command('get')
    .description('read a key, or every key under a prefix')
    .argument('<key>')
    .option('--prefix', 'every key that starts with KEY')
    .option('--rev <revision>', 'read as of this revision', nonNegative)
    .option('--limit <n>', 'at most this many keys', nonNegative)
    .option('--keys-only', 'keys without values')
    .option('--print-value-only', 'values only')
    .option('--serializable', 'answer from the member without a quorum round (may be stale)')
    .action((key: string, o: { prefix?: boolean; rev?: number; limit?: number; keysOnly?: boolean; printValueOnly?: boolean; serializable?: boolean }) =>
      withClient(globals, async (client, g) => {
        let kvs: readonly KeyValue[];
        if (o.prefix) kvs = (await client.range(key, { revision: o.rev, limit: o.limit, keysOnly: o.keysOnly, serializable: o.serializable })).kvs;
        else {
          const kv = await client.get(key, { revision: o.rev, serializable: o.serializable });
          kvs = kv ? [kv] : [];
        }
        for (const kv of kvs) {
          if (o.keysOnly && g.output === 'simple') process.stdout.write(kv.keyText() + '\n');
          else printKv(kv, o.printValueOnly === true, g.output);
        }
        if (!o.prefix && kvs.length === 0) process.exitCode = 1; // nothing printed; the status says the key is missing
      }),
    );

  const put = new Command('put')
    .description('write a value (read from stdin when VALUE is omitted)')
    .argument('<key>')
    .argument('[value]')
    .option('--lease <id>', 'attach the key to a lease', nonNegative)
    .option('--prev-kv', 'print the previous value')
    .action((key: string, value: string | undefined, o: { lease?: number; prevKv?: boolean }) =>
      withClient(globals, async (client, g) => {
        const bytes = value ?? (await readStdin());
        const r = await client.put(key, bytes, { lease: o.lease, prevKv: o.prevKv });
        if (g.output === 'json') process.stdout.write(JSON.stringify({ revision: r.header.revision }) + '\n');
        else process.stdout.write('OK\n');
        if (o.prevKv && r.prevKv) printKv(r.prevKv, false, g.output);
      }),
    );

  const del = new Command('del')
    .description('delete a key, or every key under a prefix')
    .argument('<key>')
    .option('--prefix', 'every key that starts with KEY')
    .option('--prev-kv', 'print the deleted values')
    .action((key: string, o: { prefix?: boolean; prevKv?: boolean }) =>
      withClient(globals, async (client, g) => {
        const r = await client.delete(key, { prefix: o.prefix === true, prevKv: o.prevKv });
        if (g.output === 'json') process.stdout.write(JSON.stringify({ deleted: r.deleted, revision: r.header.revision }) + '\n');
        else process.stdout.write(`${r.deleted}\n`);
        for (const kv of r.prevKvs ?? []) printKv(kv, false, g.output);
      }),
    );

  const watch = new Command('watch')
    .description('print every change of a key (or prefix) until interrupted')
    .argument('<key>')
    .option('--prefix', 'every key that starts with KEY')
    .option('--rev <revision>', 'start at this revision (history first)', nonNegative)
    .option('--prev-kv', 'print the previous value with each change')
    .action((key: string, o: { prefix?: boolean; rev?: number; prevKv?: boolean }) =>
      withClient(globals, async (client, g) => {
        const stop = new AbortController();
        process.once('SIGINT', () => stop.abort());
        process.once('SIGTERM', () => stop.abort());
        try {
          for await (const batch of client.watch(key, { prefix: o.prefix === true, startRevision: o.rev, prevKv: o.prevKv, signal: stop.signal })) {
            for (const ev of batch.events) {
              if (g.output === 'json') {
                process.stdout.write(JSON.stringify({ revision: batch.revision, type: ev.type, key: ev.kv.keyText(), value: ev.kv.text() }) + '\n');
              } else {
                process.stdout.write(`${ev.type.toUpperCase()}\n${ev.kv.keyText()}\n${ev.type === 'put' ? ev.kv.text() + '\n' : ''}`);
              }
            }
          }
        } catch (err) {
          if (!stop.signal.aborted) throw err;
        }
      }),
    );

  const status = new Command('status').description('this endpoint\'s view of the cluster').action(() =>
    withClient(globals, async (client) => {
      process.stdout.write(JSON.stringify(await client.status(), null, 2) + '\n');
    }),
  );

  return [get, put, del, watch, status];
}

/** `member list`; add, remove and promote are in admin-commands.ts. */
export function memberListCommand(globals: () => GlobalOptions): Command {
  return new Command('list').description('every member: id, role, name, peer and client URLs').action(() =>
    withClient(globals, async (client, g) => {
      const members = await client.members();
      for (const m of members) {
        if (g.output === 'json') process.stdout.write(JSON.stringify(m) + '\n');
        else process.stdout.write(`${m.id}, ${m.isLearner ? 'learner' : 'voter'}, ${m.name}, ${m.peerUrls.join(',')}, ${m.clientUrls.join(',')}\n`);
      }
    }),
  );
}

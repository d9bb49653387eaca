import { Command } from 'commander';
import type { Client, WatchEvent } from '../src/client/index.js';
import { nonNegativeInteger, leaseId } from './arguments.js';
import { interruptSignal, readStdin, withClient, type GlobalOptions, type Globals } from './context.js';
import { RequestFailure, UsageError } from './failure.js';
import { kvJson, printJson, printKvs, write, writeLine, type OutputFormat } from './output.js';
import { txnCommand } from './txn-command.js';

// cairn get | put | del | watch (and txn, in txn-command.ts): etcdctl-like
// commands on the client library. Output formats: see output.ts.

interface GetFlags {
  prefix?: boolean;
  rev?: number;
  limit?: number;
  keysOnly?: boolean;
  countOnly?: boolean;
  printValueOnly?: boolean;
  serializable?: boolean;
}

async function getRange(client: Client, key: string, o: GetFlags, output: OutputFormat): Promise<void> {
  const r = await client.range(key, { revision: o.rev, limit: o.limit, keysOnly: o.keysOnly, countOnly: o.countOnly, serializable: o.serializable });
  if (output === 'json') {
    printJson(o.countOnly ? { revision: r.header.revision, count: r.count } : { revision: r.header.revision, count: r.count, more: r.more, kvs: r.kvs.map(kvJson) });
    return;
  }
  if (o.countOnly) return writeLine(String(r.count));
  printKvs(r.kvs, output, { keysOnly: o.keysOnly, valueOnly: o.printValueOnly });
  if (r.more) process.stderr.write(`cairn: showing ${r.kvs.length} of ${r.count} keys (--limit ${o.limit})\n`);
}

async function getOne(client: Client, key: string, o: GetFlags, output: OutputFormat, endpoints: readonly string[]): Promise<void> {
  if (o.countOnly || o.limit !== undefined) throw new UsageError(`${o.countOnly ? '--count-only' : '--limit'} goes with --prefix`);
  const kv = await client.get(key, { revision: o.rev, serializable: o.serializable });
  if (!kv) {
    throw new RequestFailure(
      `key ${JSON.stringify(key)} not found${o.rev ? ` at revision ${o.rev}` : ''} (asked ${endpoints.join(',')})`,
      `\`cairn get ${JSON.stringify(key)} --prefix --keys-only\` lists the keys that start with it`,
    );
  }
  if (output === 'json') {
    const json = kvJson(kv);
    printJson({ kv: o.keysOnly ? { ...json, value: undefined } : json });
  } else printKvs([kv], output, { keysOnly: o.keysOnly, valueOnly: o.printValueOnly });
}

function getCommand(globals: Globals): Command {
  return new Command('get')
    .description('read a key, or every key under a prefix (a missing key: exit status 1)')
    .argument('<key>', 'the key (with --prefix: the prefix; "" for every key)')
    .option('--prefix', 'every key that starts with KEY')
    .option('--rev <revision>', 'read as of this revision', nonNegativeInteger)
    .option('--limit <n>', 'at most this many keys (with --prefix)', nonNegativeInteger)
    .option('--keys-only', 'keys and metadata, without values')
    .option('--count-only', 'only the number of keys (with --prefix)')
    .option('--print-value-only', 'values only')
    .option('--serializable', 'answer from the member without a quorum round (faster, may be stale)')
    .action((key: string, o: GetFlags) =>
      withClient(globals, async (client, g, endpoints) => {
        if (o.prefix) await getRange(client, key, o, g.output);
        else await getOne(client, key, o, g.output, endpoints);
      }),
    );
}

function putCommand(globals: Globals): Command {
  return new Command('put')
    .description('write a value; without VALUE it is read from stdin (all of it, bytes as they are)')
    .argument('<key>')
    .argument('[value]', 'the value (text); omit it to read the value from stdin')
    .option('--lease <id>', 'attach the key to this lease (see cairn lease grant)', leaseId)
    .option('--prev-kv', 'print the key-value as it was before')
    .option('--if-version <n>', 'only if the key\'s version is N (0: only if the key does not exist)', nonNegativeInteger)
    .option('--if-mod-revision <rev>', 'only if the key was last modified at REV (0: only if it does not exist)', nonNegativeInteger)
    .action((key: string, value: string | undefined, o: { lease?: number; prevKv?: boolean; ifVersion?: number; ifModRevision?: number }) =>
      withClient(globals, async (client, g) => {
        const bytes = value ?? (await readStdin('the value'));
        const r = await client.put(key, bytes, { lease: o.lease, prevKv: o.prevKv, ifVersion: o.ifVersion, ifModRevision: o.ifModRevision });
        if (g.output === 'json') {
          printJson({ revision: r.header.revision, ...(r.prevKv ? { prevKv: kvJson(r.prevKv) } : {}) });
          return;
        }
        writeLine('OK');
        if (o.prevKv && r.prevKv) printKvs([r.prevKv], g.output);
      }),
    );
}

function delCommand(globals: Globals): Command {
  return new Command('del')
    .description('delete a key, or every key under a prefix; prints how many were deleted')
    .argument('<key>', 'the key (with --prefix: the prefix; "" for every key)')
    .option('--prefix', 'every key that starts with KEY')
    .option('--prev-kv', 'print the deleted key-values')
    .action((key: string, o: { prefix?: boolean; prevKv?: boolean }) =>
      withClient(globals, async (client, g) => {
        const r = await client.delete(key, { prefix: o.prefix === true, prevKv: o.prevKv });
        if (g.output === 'json') {
          printJson({ revision: r.header.revision, deleted: r.deleted, ...(r.prevKvs ? { prevKvs: r.prevKvs.map(kvJson) } : {}) });
          return;
        }
        writeLine(String(r.deleted));
        if (o.prevKv && r.prevKvs && r.prevKvs.length > 0) printKvs(r.prevKvs, g.output);
      }),
    );
}

function printEvent(revision: number, ev: WatchEvent, output: OutputFormat): void {
  if (output === 'json') {
    printJson({ revision, type: ev.type, ...kvJson(ev.kv), ...(ev.prevKv ? { prevKv: kvJson(ev.prevKv) } : {}) });
    return;
  }
  // etcdctl's lines: the type, the previous key-value when asked for, then the key (and value of a put).
  const lines: (string | Uint8Array)[] = [ev.type.toUpperCase()];
  if (ev.prevKv) lines.push(ev.prevKv.key, ev.prevKv.value);
  lines.push(ev.kv.key);
  if (ev.type === 'put') lines.push(ev.kv.value);
  for (const line of lines) {
    write(line);
    write('\n');
  }
}

function watchCommand(globals: Globals): Command {
  return new Command('watch')
    .description('print every change of a key (or prefix) as it happens, until Ctrl-C; resumes by itself when a member fails')
    .argument('<key>', 'the key (with --prefix: the prefix; "" for every key)')
    .option('--prefix', 'every key that starts with KEY')
    .option('--rev <revision>', 'start at this revision: the history from there first, then live changes', nonNegativeInteger)
    .option('--prev-kv', 'print the previous key-value with each change')
    .action((key: string, o: { prefix?: boolean; rev?: number; prevKv?: boolean }) =>
      withClient(globals, async (client, g) => {
        const interrupt = interruptSignal();
        // A reader that went away (`cairn watch ... | head -1`) ends the watch too. The
        // listener stays: a write still in flight may fail after the loop ends.
        const readerGone = new AbortController();
        process.stdout.on('error', () => readerGone.abort());
        const stop = AbortSignal.any([interrupt.signal, readerGone.signal]);
        try {
          for await (const batch of client.watch(key, { prefix: o.prefix === true, startRevision: o.rev, prevKv: o.prevKv, signal: stop })) {
            for (const ev of batch.events) printEvent(batch.revision, ev, g.output);
          }
        } catch (err) {
          if (!stop.aborted) throw err;
        } finally {
          interrupt.dispose();
        }
      }),
    );
}

export function kvCommands(globals: () => GlobalOptions): Command[] {
  return [getCommand(globals), putCommand(globals), delCommand(globals), watchCommand(globals), txnCommand(globals)];
}

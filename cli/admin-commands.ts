import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { Command, InvalidArgumentError } from 'commander';
import type { Txn } from '../src/client/index.js';
import { memberListCommand, readStdin, withClient, type GlobalOptions } from './kv-commands.js';

// cairn txn | lease | member add/remove/promote | endpoint health | move-leader |
// compact | snapshot save: thin commands on the client library.

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

const print = (value: unknown): void => {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
};

export function adminCommands(globals: () => GlobalOptions): Command[] {
  const txn = new Command('txn')
    .description('run a transaction given as API.md JSON ({"compare":[...],"success":[...],"failure":[...]}) from FILE or stdin')
    .argument('[file]')
    .action((file: string | undefined) =>
      withClient(globals, async (client) => {
        const text = file ? await readFile(file, 'utf8') : (await readStdin()).toString('utf8');
        let body: Txn;
        try {
          body = JSON.parse(text) as Txn;
        } catch {
          throw new InvalidArgumentError('the transaction is not valid JSON');
        }
        const r = await client.txn(body);
        print({ succeeded: r.succeeded, revision: r.header.revision });
        if (!r.succeeded) process.exitCode = 1;
      }),
    );

  const lease = new Command('lease').description('leases');
  lease.command('grant').argument('<ttl>', 'seconds', positive).action((ttl: number) => withClient(globals, async (c) => print(await c.grantLease(ttl))));
  lease.command('keep-alive').argument('<id>', 'lease id', positive).action((id: number) => withClient(globals, async (c) => print(await c.keepAlive(id))));
  lease.command('revoke').argument('<id>', 'lease id', positive).action((id: number) => withClient(globals, async (c) => print(await c.revokeLease(id))));
  lease.command('list').action(() => withClient(globals, async (c) => print(await c.leases())));
  lease.command('ttl').argument('<id>', 'lease id', positive).action((id: number) =>
    withClient(globals, async (c) => {
      const info = await c.leaseInfo(id);
      print({ id: info.id, ttl: info.ttl, grantedTtl: info.grantedTtl, keys: info.keys.map((k) => Buffer.from(k).toString('utf8')) });
    }),
  );

  const member = new Command('member').description('cluster membership');
  member.addCommand(memberListCommand(globals));
  member
    .command('add')
    .argument('<name>', 'the new member\'s name (it publishes it when it starts)')
    .requiredOption('--peer-urls <urls>', 'its peer URLs, comma separated')
    .option('--learner', 'add as a learner (promote it once caught up)')
    .action((name: string, o: { peerUrls: string; learner?: boolean }) =>
      withClient(globals, async (c) => {
        const peerUrls = o.peerUrls.split(',').map((s) => s.trim()).filter(Boolean);
        const r = await c.addMember(peerUrls, { learner: o.learner === true });
        print(r.member);
        const all = [...r.members.filter((m) => m.id !== r.member.id).map((m) => `${m.name}=${m.peerUrls[0]}`), `${name}=${peerUrls[0]}`];
        process.stdout.write(`start it with: --name ${name} --initial-cluster-state existing --initial-cluster ${all.join(',')}\n`);
      }),
    );
  member.command('remove').argument('<id>').action((id: string) => withClient(globals, async (c) => print(await c.removeMember(id))));
  member.command('promote').argument('<id>').action((id: string) => withClient(globals, async (c) => print(await c.promoteMember(id))));

  const endpoint = new Command('endpoint').description('the endpoints themselves');
  endpoint.command('health').action(() =>
    withClient(globals, async (_c, g) => {
      let unhealthy = 0;
      for (const url of g.endpoints.split(',').map((s) => s.trim()).filter(Boolean)) {
        const started = Date.now();
        try {
          const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(g.timeout) });
          const body = (await res.json()) as { ok: boolean; reason?: string };
          process.stdout.write(`${url} is ${res.ok ? 'healthy' : `unhealthy: ${body.reason ?? res.status}`}: took ${Date.now() - started} ms\n`);
          if (!res.ok) unhealthy++;
        } catch (err) {
          unhealthy++;
          process.stdout.write(`${url} is unhealthy: ${(err as Error).message}\n`);
        }
      }
      if (unhealthy > 0) process.exitCode = 1;
    }),
  );

  const moveLeader = new Command('move-leader').argument('<id>', 'the member to lead').action((id: string) => withClient(globals, async (c) => print(await c.moveLeader(id))));
  const compact = new Command('compact').argument('<revision>', 'drop history below it', positive).action((rev: number) => withClient(globals, async (c) => print(await c.compact(rev))));

  const snapshot = new Command('snapshot').description('backups');
  snapshot
    .command('save')
    .argument('<file>')
    .action((file: string) =>
      withClient(globals, async (c) => {
        await pipeline(Readable.from(c.snapshot({ timeoutMs: 10 * 60_000 })), createWriteStream(file));
        process.stdout.write(`snapshot saved to ${file}\n`);
      }),
    );

  return [txn, lease, member, endpoint, moveLeader, compact, snapshot];
}

import { Command } from 'commander';
import { CairnClientError, type Client, type LeaseInfo } from '../src/client/index.js';
import { leaseId, positiveInteger } from './arguments.js';
import { interruptSignal, withClient, type Globals } from './context.js';
import { RequestFailure } from './failure.js';
import { printJson, write, writeLine } from './output.js';
import { formatTable } from './table.js';

// cairn lease grant | revoke | keep-alive | ttl (timetolive) | list. Lease ids are
// decimal numbers, as the API has them.

/** Lease details asked at once, at most this many at a time. */
const INFO_CONCURRENCY = 8;

function notFound(id: number): RequestFailure {
  return new RequestFailure(`lease ${id} not found: it expired or was revoked`, '`cairn lease list` shows the leases that exist');
}

async function leaseInfo(client: Client, id: number): Promise<LeaseInfo> {
  try {
    const info = await client.leaseInfo(id);
    if (info.ttl < 0) throw notFound(id);
    return info;
  } catch (err) {
    if (err instanceof CairnClientError && err.code === 'KeyNotFound') throw notFound(id);
    throw err;
  }
}

/** Details of many leases, INFO_CONCURRENCY at a time; a lease gone meanwhile has ttl -1. */
async function leaseInfos(client: Client, ids: readonly number[]): Promise<{ id: number; ttl: number; grantedTtl: number; keys: number }[]> {
  const out: { id: number; ttl: number; grantedTtl: number; keys: number }[] = new Array(ids.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < ids.length; i = next++) {
      try {
        const info = await leaseInfo(client, ids[i]);
        out[i] = { id: ids[i], ttl: info.ttl, grantedTtl: info.grantedTtl, keys: info.keys.length };
      } catch (err) {
        if (!(err instanceof RequestFailure)) throw err;
        out[i] = { id: ids[i], ttl: -1, grantedTtl: 0, keys: 0 };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(INFO_CONCURRENCY, ids.length) }, worker));
  return out;
}

export function leaseCommand(globals: Globals): Command {
  const lease = new Command('lease').description('leases: keys attached to one are deleted when it expires or is revoked');
  lease
    .command('grant')
    .description('create a lease that expires after TTL seconds unless kept alive')
    .argument('<ttl>', 'seconds', positiveInteger)
    .action((ttl: number) =>
      withClient(globals, async (client, g) => {
        const r = await client.grantLease(ttl);
        if (g.output === 'json') printJson({ id: r.id, ttl: r.ttl, revision: r.header.revision });
        else writeLine(`lease ${r.id} granted with TTL(${r.ttl}s)`);
      }),
    );

  lease
    .command('revoke')
    .description('end a lease now, deleting its keys')
    .argument('<id>', 'lease id', leaseId)
    .action((id: number) =>
      withClient(globals, async (client, g) => {
        try {
          const r = await client.revokeLease(id);
          if (g.output === 'json') printJson({ id, revision: r.header.revision });
          else writeLine(`lease ${id} revoked`);
        } catch (err) {
          if (err instanceof CairnClientError && err.code === 'KeyNotFound') throw notFound(id);
          throw err;
        }
      }),
    );

  lease
    .command('keep-alive')
    .description('keep a lease alive until Ctrl-C (a keep-alive every third of its TTL), or once with --once')
    .argument('<id>', 'lease id', leaseId)
    .option('--once', 'one keep-alive, then exit')
    .action((id: number, o: { once?: boolean }) =>
      withClient(globals, async (client, g) => {
        const interrupt = interruptSignal();
        try {
          const report = (ttl: number): void => (g.output === 'json' ? printJson({ id, ttl }) : writeLine(`lease ${id} keepalived with TTL(${ttl})`));
          if (o.once) {
            const r = await client.keepAlive(id, { signal: interrupt.signal });
            if (r.ttl <= 0) throw notFound(id);
            return report(r.ttl);
          }
          // Retried across endpoints and failures until the lease would have expired anyway.
          const keeper = client.keepLeaseAlive(id, { signal: interrupt.signal, onKeepAlive: report });
          await keeper.done;
        } catch (err) {
          if (interrupt.signal.aborted) return;
          if (err instanceof CairnClientError && err.code === 'KeyNotFound') throw notFound(id);
          throw err;
        } finally {
          interrupt.dispose();
        }
      }),
    );

  lease
    .command('ttl')
    .alias('timetolive')
    .description('a lease\'s remaining and granted TTL (and its keys with --keys)')
    .argument('<id>', 'lease id', leaseId)
    .option('--keys', 'list the keys attached to it')
    .action((id: number, o: { keys?: boolean }) =>
      withClient(globals, async (client, g) => {
        const info = await leaseInfo(client, id);
        const keys = info.keys.map((k) => Buffer.from(k).toString('utf8'));
        if (g.output === 'json') printJson({ id, ttl: info.ttl, grantedTtl: info.grantedTtl, keys });
        else writeLine(`lease ${id} granted with TTL(${info.grantedTtl}s), remaining(${info.ttl}s)${o.keys ? `, attached keys(${JSON.stringify(keys)})` : ''}`);
      }),
    );

  lease
    .command('list')
    .description('every lease (json and table: with its TTL and number of keys)')
    .action(() =>
      withClient(globals, async (client, g) => {
        const ids = await client.leases();
        if (g.output === 'simple') {
          writeLine(`found ${ids.length} leases`);
          for (const id of ids) writeLine(String(id));
          return;
        }
        const infos = await leaseInfos(client, ids);
        if (g.output === 'json') printJson({ leases: infos });
        else write(formatTable([{ title: 'ID', align: 'right' }, { title: 'TTL', align: 'right' }, { title: 'GRANTED TTL', align: 'right' }, { title: 'KEYS', align: 'right' }], infos.map((l) => [l.id, l.ttl, l.grantedTtl, l.keys])));
      }),
    );
  return lease;
}

import { Command } from 'commander';
import { Agent, request } from 'undici';
import { ConnectionError, type Status } from '../src/client/index.js';
import { endpointList, newClient, runAction, tlsOptions, type GlobalOptions, type Globals } from './context.js';
import { connectionReason, describeFailure } from './failure.js';
import { humanBytes, printJson, write, writeLine } from './output.js';
import { formatTable, type Column } from './table.js';

// cairn status | endpoint status | endpoint health: one answer per endpoint
// (each asked on its own, no failover), one row each, like etcdctl's
// `endpoint status` and `endpoint health`. Exit status 1 when any endpoint failed.

/** The endpoints to ask: --endpoints, or with --cluster every member's client URLs (learned through --endpoints). */
async function targets(g: GlobalOptions, cluster: boolean | undefined): Promise<string[]> {
  const endpoints = endpointList(g);
  if (!cluster) return endpoints;
  const client = newClient(g, endpoints);
  try {
    const urls = (await client.members()).flatMap((m) => m.clientUrls);
    return urls.length > 0 ? [...new Set(urls)] : endpoints;
  } finally {
    await client.close();
  }
}

function reportEndpointError(endpoint: string, err: unknown): void {
  const reason = err instanceof ConnectionError ? err.causes.map((c) => connectionReason(c.error)).join('; ') || err.message : describeFailure(err, [endpoint]).message;
  process.stderr.write(`cairn: ${endpoint}: ${reason}\n`);
}

const STATUS_COLUMNS: Column[] = [
  { title: 'ENDPOINT' },
  { title: 'ID' },
  { title: 'NAME' },
  { title: 'VERSION' },
  { title: 'DB SIZE', align: 'right' },
  { title: 'IS LEADER' },
  { title: 'IS LEARNER' },
  { title: 'RAFT TERM', align: 'right' },
  { title: 'RAFT INDEX', align: 'right' },
  { title: 'RAFT APPLIED INDEX', align: 'right' },
  { title: 'REVISION', align: 'right' },
  { title: 'COMPACT REVISION', align: 'right' },
];

function statusRow(endpoint: string, s: Status): (string | number | boolean)[] {
  return [endpoint, s.memberId, s.name, s.version, humanBytes(s.dbSizeBytes), s.leaderId === s.memberId, s.isLearner, s.term, s.commitIndex, s.appliedIndex, s.revision, s.compactRevision];
}

async function printStatus(g: GlobalOptions, cluster: boolean | undefined): Promise<void> {
  const endpoints = await targets(g, cluster);
  const answers = await Promise.all(
    endpoints.map(async (endpoint) => {
      const client = newClient(g, [endpoint]);
      try {
        return { endpoint, status: await client.status() };
      } catch (error) {
        return { endpoint, error };
      } finally {
        await client.close();
      }
    }),
  );
  const ok = answers.filter((a): a is { endpoint: string; status: Status } => 'status' in a);
  if (g.output === 'json') {
    printJson(ok.map(({ endpoint, status }) => {
      const { header: _header, ...rest } = status;
      return { endpoint, ...rest, isLeader: status.leaderId === status.memberId };
    }));
  } else if (g.output === 'table') write(formatTable(STATUS_COLUMNS, ok.map((a) => statusRow(a.endpoint, a.status))));
  else for (const a of ok) writeLine(statusRow(a.endpoint, a.status).join(', '));
  for (const a of answers) if ('error' in a) reportEndpointError(a.endpoint, a.error);
  if (ok.length < answers.length) {
    process.stderr.write('hint: is cairn running there? `cairn endpoint health` checks each endpoint; --endpoints or CAIRN_ENDPOINTS sets them\n');
    process.exitCode = 1;
  }
}

interface Health {
  readonly endpoint: string;
  readonly health: boolean;
  readonly tookMs: number;
  readonly error?: string;
}

/** /readyz of one endpoint: healthy when it has a leader and has applied what is committed. */
async function checkHealth(endpoint: string, dispatcher: Agent, timeoutMs: number): Promise<Health> {
  const started = performance.now();
  const took = (): number => Math.round((performance.now() - started) * 10) / 10;
  try {
    const res = await request(`${endpoint}/readyz`, { dispatcher, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.body.text();
    if (res.statusCode === 200) return { endpoint, health: true, tookMs: took() };
    let reason = `HTTP ${res.statusCode}`;
    try {
      reason = (JSON.parse(text) as { reason?: string }).reason ?? reason;
    } catch {
      // not cairn's answer: keep the status
    }
    return { endpoint, health: false, tookMs: took(), error: reason };
  } catch (err) {
    const reason = (err as Error).name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : connectionReason(err);
    return { endpoint, health: false, tookMs: took(), error: reason };
  }
}

async function printHealth(g: GlobalOptions, cluster: boolean | undefined): Promise<void> {
  const endpoints = await targets(g, cluster);
  const tls = tlsOptions(g);
  const dispatcher = new Agent(tls ? { connect: tls } : {});
  try {
    const results = await Promise.all(endpoints.map((e) => checkHealth(e, dispatcher, g.timeout)));
    if (g.output === 'json') printJson(results);
    else if (g.output === 'table') {
      const columns: Column[] = [{ title: 'ENDPOINT' }, { title: 'HEALTH' }, { title: 'TOOK', align: 'right' }, { title: 'ERROR' }];
      write(formatTable(columns, results.map((r) => [r.endpoint, r.health, `${r.tookMs} ms`, r.error ?? ''])));
    } else {
      for (const r of results) writeLine(r.health ? `${r.endpoint} is healthy: took ${r.tookMs} ms` : `${r.endpoint} is unhealthy: ${r.error}`);
    }
    if (results.some((r) => !r.health)) process.exitCode = 1;
  } finally {
    await dispatcher.close();
  }
}

const CLUSTER_FLAG = ['--cluster', 'every member\'s client URLs (from the member list) instead of --endpoints'] as const;

export function statusCommand(globals: Globals): Command {
  return new Command('status')
    .description('each endpoint\'s member: id, name, leader or not, Raft term and index, revision, size')
    .option(...CLUSTER_FLAG)
    .action((o: { cluster?: boolean }) => runAction(globals, (g) => printStatus(g, o.cluster)));
}

export function endpointCommand(globals: Globals): Command {
  const endpoint = new Command('endpoint').description('the endpoints themselves: health and status, one row each');
  endpoint
    .command('health')
    .description('whether each endpoint has a leader and is caught up (its /readyz); exit status 1 if any is not')
    .option(...CLUSTER_FLAG)
    .action((o: { cluster?: boolean }) => runAction(globals, (g) => printHealth(g, o.cluster)));
  endpoint
    .command('status')
    .description('the same as cairn status')
    .option(...CLUSTER_FLAG)
    .action((o: { cluster?: boolean }) => runAction(globals, (g) => printStatus(g, o.cluster)));
  return endpoint;
}

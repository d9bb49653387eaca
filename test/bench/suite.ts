// `npm run bench`: the issue-3 figures on a fresh 3-member loopback cluster.
// Each case runs RUNS times; the medians are printed last. The load comes from
// wrk when it is installed (apt-get install wrk: light, so the members get the
// cores), else from cairn's own Node.js generator (BENCH_TOOL=node forces it).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { runBench, formatResult, type BenchResult } from '../../cli/bench.js';
import { LocalCluster } from '../../cluster/local-cluster.js';
import { runWrk, wrkAvailable } from './wrk.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** Seconds per case with wrk (the Node.js generator runs a fixed number of requests instead). */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);

type Target = 'leader' | 'follower' | 'all';
interface Case {
  readonly name: string;
  readonly kind: 'put' | 'get';
  readonly clients: number;
  readonly total: number;
  readonly serializable: boolean;
  readonly target: Target;
}

const CASES: readonly Case[] = [
  { name: 'PUT 256 B, 1 client, to the leader', kind: 'put', clients: 1, total: 2000, serializable: false, target: 'leader' },
  { name: 'PUT 256 B, 1 client, to a follower', kind: 'put', clients: 1, total: 2000, serializable: false, target: 'follower' },
  { name: 'PUT 256 B, 64 clients, to the leader', kind: 'put', clients: 64, total: 30000, serializable: false, target: 'leader' },
  { name: 'PUT 256 B, 64 clients, spread over all members', kind: 'put', clients: 64, total: 30000, serializable: false, target: 'all' },
  { name: 'GET linearizable, 64 clients, spread over all members', kind: 'get', clients: 64, total: 30000, serializable: false, target: 'all' },
  { name: 'GET serializable, 64 clients, spread over all members', kind: 'get', clients: 64, total: 30000, serializable: true, target: 'all' },
];

async function leaderUrl(urls: readonly string[]): Promise<{ leader: string; follower: string }> {
  for (const url of urls) {
    const status = (await (await fetch(`${url}/v1/status`)).json()) as { memberId: string; leaderId: string | null };
    if (status.leaderId === status.memberId) return { leader: url, follower: urls.find((u) => u !== url)! };
  }
  throw new Error('no leader');
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** The keys wrk's get.lua reads (bench/ + 26 digits, 0 to 9999, as put.lua writes them), so no GET is a 404. */
async function writeWrkKeys(url: string): Promise<void> {
  const pool = new Pool(url, { connections: 16 });
  const value = Buffer.alloc(256, 'v');
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < 10_000; i = next++) {
      const res = await pool.request({ method: 'PUT', path: `/v1/kv/bench/${String(i).padStart(26, '0')}`, body: value });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`writing the GET keys: HTTP ${res.statusCode}`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  await pool.close();
}

/** wrk on each endpoint at once, the clients split between them; latencies: the worst endpoint's. */
async function wrkOver(c: Case, endpoints: readonly string[]): Promise<BenchResult> {
  const share = (i: number): number => Math.floor(c.clients / endpoints.length) + (i < c.clients % endpoints.length ? 1 : 0);
  const parts = await Promise.all(endpoints.map((url, i) => runWrk(c.kind, { url, clients: share(i), seconds: SECONDS, serializable: c.serializable })));
  const sum = (k: keyof BenchResult): number => parts.reduce((s, r) => s + r[k], 0);
  const max = (k: keyof BenchResult): number => Math.max(...parts.map((r) => r[k]));
  return { requests: sum('requests'), errors: sum('errors'), seconds: max('seconds'), perSecond: sum('perSecond'), p50Ms: max('p50Ms'), p90Ms: max('p90Ms'), p99Ms: max('p99Ms'), p999Ms: max('p999Ms'), meanMs: max('meanMs'), maxMs: max('maxMs') };
}

const dir = await mkdtemp(join(tmpdir(), 'cairn-bench-'));
const cluster = await LocalCluster.create({ size: 3, dir, clientPort: 0, peerPort: 0, extraFlags: ['--log-level', 'warn'], onLine: () => {} });
try {
  await cluster.start();
  await cluster.waitReady(30_000);
  const useWrk = process.env.BENCH_TOOL !== 'node' && (await wrkAvailable());
  console.log(`load generator: ${useWrk ? `wrk, ${SECONDS} s per case` : "cairn's Node.js generator"}`);
  if (useWrk) await writeWrkKeys(cluster.clientUrls[0]);
  const results = new Map<string, BenchResult[]>();
  for (let run = 1; run <= RUNS; run++) {
    for (const c of CASES) {
      const roles = await leaderUrl(cluster.clientUrls);
      const endpoints = c.target === 'leader' ? [roles.leader] : c.target === 'follower' ? [roles.follower] : cluster.clientUrls;
      const r = useWrk ? await wrkOver(c, endpoints) : await runBench(c.kind, { endpoints, clients: c.clients, total: c.total, keySize: 32, valueSize: 256, serializable: c.serializable });
      console.log(`run ${run}: ${formatResult(c.name, r)}`);
      results.set(c.name, [...(results.get(c.name) ?? []), r]);
    }
  }
  console.log(`\nmedians of ${RUNS} runs (3 members on loopback, ${cluster.clientUrls.join(',')}):`);
  for (const [name, rs] of results) {
    const m = (k: keyof BenchResult): number => median(rs.map((r) => r[k]));
    console.log(`  ${name}: ${Math.round(m('perSecond'))}/s, p50 ${m('p50Ms').toFixed(2)} ms, p99 ${m('p99Ms').toFixed(2)} ms, errors ${rs.reduce((s, r) => s + r.errors, 0)}`);
  }
} finally {
  await cluster.stop();
  await rm(dir, { recursive: true, force: true });
}

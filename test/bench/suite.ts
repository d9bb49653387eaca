// `npm run bench`: the issue-3 figures on a fresh 3-member loopback cluster.
// Each case runs RUNS times; the medians are printed last.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBench, formatResult, type BenchResult } from '../../cli/bench.js';
import { LocalCluster } from '../../cluster/local-cluster.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);

const CASES = [
  { name: 'PUT 256 B, 1 client (to the leader)', kind: 'put', clients: 1, total: 2000, serializable: false, leaderOnly: true },
  { name: 'PUT 256 B, 1 client (to a follower)', kind: 'put', clients: 1, total: 2000, serializable: false, leaderOnly: false, follower: true },
  { name: 'PUT 256 B, 64 clients', kind: 'put', clients: 64, total: 30000, serializable: false },
  { name: 'GET linearizable, 64 clients', kind: 'get', clients: 64, total: 30000, serializable: false },
  { name: 'GET serializable, 64 clients', kind: 'get', clients: 64, total: 30000, serializable: true },
] as const;

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

const dir = await mkdtemp(join(tmpdir(), 'cairn-bench-'));
const cluster = await LocalCluster.create({ size: 3, dir, clientPort: 0, peerPort: 0, extraFlags: ['--log-level', 'warn'], onLine: () => {} });
try {
  await cluster.start();
  await cluster.waitReady(30_000);
  const results = new Map<string, BenchResult[]>();
  for (let run = 1; run <= RUNS; run++) {
    for (const c of CASES) {
      const roles = await leaderUrl(cluster.clientUrls);
      const endpoints = 'leaderOnly' in c && c.leaderOnly ? [roles.leader] : 'follower' in c ? [roles.follower] : cluster.clientUrls;
      const r = await runBench(c.kind, { endpoints, clients: c.clients, total: c.total, keySize: 32, valueSize: 256, serializable: c.serializable });
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

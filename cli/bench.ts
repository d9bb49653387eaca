import { Command, InvalidArgumentError } from 'commander';
import { Pool } from 'undici';

// `cairn bench put|get`: a closed-loop load generator over kept-alive HTTP
// connections: N clients, each sends its next request when the last answered.
// It reports throughput and latency percentiles; a failed request counts as an error.

export interface BenchOptions {
  readonly endpoints: readonly string[];
  readonly clients: number;
  readonly total: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly serializable: boolean;
}

export interface BenchResult {
  readonly requests: number;
  readonly errors: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function keyOf(i: number, size: number): string {
  const base = `bench/${i.toString(36)}`;
  return base.length >= size ? base : base + 'k'.repeat(size - base.length);
}

/** Runs one benchmark: `put` writes `total` keys (cycling over clients), `get` reads them back. */
export async function runBench(kind: 'put' | 'get', o: BenchOptions): Promise<BenchResult> {
  const pools = o.endpoints.map((url) => new Pool(url, { connections: Math.ceil(o.clients / o.endpoints.length) + 1, pipelining: 1 }));
  const value = Buffer.alloc(o.valueSize, 'v');
  const latencies = new Float64Array(o.total);
  let next = 0;
  let errors = 0;
  const started = process.hrtime.bigint();
  const worker = async (client: number): Promise<void> => {
    const pool = pools[client % pools.length];
    for (;;) {
      const i = next++;
      if (i >= o.total) return;
      const path = `/v1/kv/${encodeURIComponent(keyOf(i % Math.max(1, Math.min(o.total, 10000)), o.keySize))}`;
      const t0 = process.hrtime.bigint();
      try {
        const res =
          kind === 'put'
            ? await pool.request({ method: 'PUT', path, body: value })
            : await pool.request({ method: 'GET', path: o.serializable ? `${path}?serializable=true` : path });
        await res.body.dump();
        if (res.statusCode !== 200 && !(kind === 'get' && res.statusCode === 404)) errors++;
      } catch {
        errors++;
      }
      latencies[i] = Number(process.hrtime.bigint() - t0) / 1e6;
    }
  };
  await Promise.all(Array.from({ length: o.clients }, (_, c) => worker(c)));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await Promise.all(pools.map((p) => p.close()));
  const sorted = latencies.slice().sort();
  return {
    requests: o.total,
    errors,
    seconds,
    perSecond: o.total / seconds,
    p50Ms: percentile(sorted, 50),
    p90Ms: percentile(sorted, 90),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted[sorted.length - 1] ?? 0,
  };
}

export function formatResult(name: string, r: BenchResult): string {
  const f = (n: number): string => n.toFixed(2);
  return `${name}: ${r.requests} requests in ${r.seconds.toFixed(2)} s = ${Math.round(r.perSecond)}/s, latency ms p50 ${f(r.p50Ms)} p90 ${f(r.p90Ms)} p99 ${f(r.p99Ms)} max ${f(r.maxMs)}, errors ${r.errors}`;
}

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

export function benchCommand(endpoints: () => string[]): Command {
  const bench = new Command('bench').description('measure throughput and latency against a cluster');
  for (const kind of ['put', 'get'] as const) {
    bench
      .command(kind)
      .description(kind === 'put' ? 'write keys' : 'read keys (write them first with bench put)')
      .option('--clients <n>', 'concurrent clients', positive, 1)
      .option('--total <n>', 'requests in all', positive, 10000)
      .option('--key-size <bytes>', 'key size', positive, 32)
      .option('--value-size <bytes>', 'value size', positive, 256)
      .option('--serializable', 'serializable reads (no quorum round)', false)
      .action(async (o: { clients: number; total: number; keySize: number; valueSize: number; serializable: boolean }) => {
        const result = await runBench(kind, { endpoints: endpoints(), ...o });
        process.stdout.write(formatResult(`${kind} clients=${o.clients}`, result) + '\n');
        if (result.errors > 0) process.exitCode = 1;
      });
  }
  return bench;
}

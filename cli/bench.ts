import type { ConnectionOptions } from 'node:tls';
import { Command } from 'commander';
import { positiveInteger } from './arguments.js';
import { endpointList, runAction, tlsOptions, type GlobalOptions, type Globals } from './context.js';
import { benchKey, benchPools } from './bench-pools.js';
import type { WatchBenchResult } from './bench-watch.js';
import type { LatencySummary } from './latency-histogram.js';
import { printJson, write, writeLine, type OutputFormat } from './output.js';
import { Progress } from './progress.js';
import { formatTable, type Column } from './table.js';

// `cairn bench put|get|watch`: a closed-loop load generator over kept-alive HTTP
// connections: N clients, each sends its next request when the last answered.
// It reports throughput and latency percentiles (HDR histogram); a failed request
// counts as an error. `watch` is in bench-watch.ts.

export interface BenchOptions {
  readonly endpoints: readonly string[];
  readonly clients: number;
  readonly total: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly serializable: boolean;
  /** https endpoints: CA, client certificate and key. */
  readonly tls?: ConnectionOptions;
  /** Draw a progress line on stderr when it is a terminal. Default false. */
  readonly progress?: boolean;
}

/** Every field is a number (test/bench/suite.ts takes medians of each). */
export interface BenchResult extends Omit<LatencySummary, 'count'> {
  readonly requests: number;
  readonly errors: number;
  readonly seconds: number;
  readonly perSecond: number;
}

/** Keys cycle over this many, so `get` after `put` reads what put wrote. */
const KEY_SPACE = 10_000;

/** Runs one benchmark: `put` writes `total` keys (cycling over clients), `get` reads them back. */
export async function runBench(kind: 'put' | 'get', o: BenchOptions): Promise<BenchResult> {
  // Loaded here, not with the command: only benchmarks need the histogram.
  const { LatencyHistogram } = await import('./latency-histogram.js');
  const pools = benchPools(o.endpoints, o.clients, o.tls);
  const value = Buffer.alloc(o.valueSize, 'v');
  const latencies = new LatencyHistogram();
  let next = 0;
  let finished = 0;
  let errors = 0;
  const progress = o.progress ? new Progress({ label: `bench ${kind}`, total: o.total, done: () => finished }) : undefined;
  const started = performance.now();
  const worker = async (client: number): Promise<void> => {
    const pool = pools[client % pools.length];
    for (let i = next++; i < o.total; i = next++) {
      const path = `/v1/kv/${encodeURIComponent(benchKey(i % Math.min(o.total, KEY_SPACE), o.keySize))}`;
      const t0 = performance.now();
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
      latencies.recordMs(performance.now() - t0);
      finished++;
    }
  };
  try {
    await Promise.all(Array.from({ length: o.clients }, (_, c) => worker(c)));
  } finally {
    progress?.stop();
    await Promise.all(pools.map((p) => p.close()));
  }
  const seconds = (performance.now() - started) / 1000;
  const { count: _count, ...summary } = latencies.summary();
  return { requests: o.total, errors, seconds, perSecond: o.total / seconds, ...summary };
}

export function formatResult(name: string, r: BenchResult): string {
  const f = (n: number): string => n.toFixed(2);
  return `${name}: ${r.requests} requests in ${r.seconds.toFixed(2)} s = ${Math.round(r.perSecond)}/s, latency ms p50 ${f(r.p50Ms)} p90 ${f(r.p90Ms)} p99 ${f(r.p99Ms)} p99.9 ${f(r.p999Ms)} max ${f(r.maxMs)}, errors ${r.errors}`;
}

function latencyJson(r: { p50Ms: number; p90Ms: number; p99Ms: number; p999Ms: number; maxMs: number; meanMs: number }): Record<string, number> {
  return { p50: r.p50Ms, p90: r.p90Ms, p99: r.p99Ms, p999: r.p999Ms, max: r.maxMs, mean: r.meanMs };
}

const LATENCY_COLUMNS: Column[] = ['P50', 'P90', 'P99', 'P99.9', 'MAX'].map((p) => ({ title: `${p} MS`, align: 'right' }));
const latencyCells = (r: BenchResult | WatchBenchResult): string[] => [r.p50Ms, r.p90Ms, r.p99Ms, r.p999Ms, r.maxMs].map((n) => n.toFixed(2));

function printResult(kind: 'put' | 'get', o: BenchOptions, r: BenchResult, output: OutputFormat): void {
  if (output === 'json') {
    const { endpoints, clients, total, keySize, valueSize, serializable } = o;
    printJson({ kind, endpoints, clients, total, keySize, valueSize, ...(kind === 'get' ? { serializable } : {}), requests: r.requests, errors: r.errors, seconds: r.seconds, perSecond: r.perSecond, latencyMs: latencyJson(r) });
  } else if (output === 'table') {
    const columns: Column[] = [{ title: 'BENCH' }, ...['CLIENTS', 'REQUESTS', 'ERRORS', 'SECONDS', 'PER SECOND'].map((t) => ({ title: t, align: 'right' as const })), ...LATENCY_COLUMNS];
    write(formatTable(columns, [[kind, o.clients, r.requests, r.errors, r.seconds.toFixed(2), Math.round(r.perSecond), ...latencyCells(r)]]));
  } else writeLine(formatResult(`${kind} clients=${o.clients}`, r));
}

async function printWatchResult(r: WatchBenchResult, output: OutputFormat): Promise<void> {
  const { formatWatchResult, watchResultJson } = await import('./bench-watch.js');
  if (output === 'json') printJson(watchResultJson(r));
  else if (output === 'table') {
    const columns: Column[] = [{ title: 'BENCH' }, ...['WATCHERS', 'EVENTS', 'DELIVERED', 'MISSING', 'EVENTS/S'].map((t) => ({ title: t, align: 'right' as const })), ...LATENCY_COLUMNS];
    write(formatTable(columns, [['watch', r.watchers, r.events, r.delivered, r.missing, Math.round(r.eventsPerSecond), ...latencyCells(r)]]));
  } else writeLine(formatWatchResult(r));
}

interface BenchFlags {
  clients: number;
  total: number;
  keySize: number;
  valueSize: number;
  serializable?: boolean;
  watchers?: number;
}

function benchTarget(g: GlobalOptions): { endpoints: string[]; tls: ConnectionOptions | undefined } {
  return { endpoints: endpointList(g), tls: tlsOptions(g) };
}

export function benchCommand(globals: Globals): Command {
  const bench = new Command('bench').description('measure throughput and latency against a cluster (--endpoints): put, get, watch');
  const common = (command: Command, total: number): Command =>
    command
      .option('--clients <n>', 'concurrent clients (each sends its next request when the last answered)', positiveInteger, 1)
      .option('--total <n>', 'requests in all', positiveInteger, total)
      .option('--key-size <bytes>', 'key size', positiveInteger, 32)
      .option('--value-size <bytes>', 'value size', positiveInteger, 256);
  for (const kind of ['put', 'get'] as const) {
    const command = common(bench.command(kind), 10_000).description(kind === 'put' ? 'write keys (bench/...)' : 'read the keys bench put wrote');
    if (kind === 'get') command.option('--serializable', 'serializable reads (no quorum round)');
    command.action((o: BenchFlags) =>
      runAction(globals, async (g) => {
        const options = { ...benchTarget(g), clients: o.clients, total: o.total, keySize: o.keySize, valueSize: o.valueSize, serializable: o.serializable === true, progress: true };
        const result = await runBench(kind, options);
        printResult(kind, options, result, g.output);
        if (result.errors > 0) process.exitCode = 1;
      }),
    );
  }
  common(bench.command('watch'), 1000)
    .description('watchers on a prefix while clients put TOTAL events: event delivery latency (put acknowledged to event seen) and events/s')
    .option('--watchers <n>', 'watchers, each sees every event', positiveInteger, 10)
    .action((o: BenchFlags) =>
      runAction(globals, async (g) => {
        const { runWatchBench } = await import('./bench-watch.js');
        const result = await runWatchBench({ ...benchTarget(g), watchers: o.watchers ?? 10, clients: o.clients, total: o.total, keySize: o.keySize, valueSize: o.valueSize, timeoutMs: Math.max(g.timeout, 30_000), progress: true });
        await printWatchResult(result, g.output);
        if (result.errors > 0 || result.missing > 0) process.exitCode = 1;
      }),
    );
  return bench;
}

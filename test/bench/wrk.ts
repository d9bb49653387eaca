// Load from wrk (Debian package `wrk`), a C load generator that takes far less of
// the 2 shared cores than a Node.js one, with the Lua scripts in ./wrk/.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { BenchResult } from '../../cli/bench.js';

const run = promisify(execFile);

/** The Lua scripts live beside the sources; from dist/ they are found there too. */
const SCRIPTS = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../../test/bench/wrk/' : './wrk/', import.meta.url));

export async function wrkAvailable(): Promise<boolean> {
  try {
    await run('wrk', ['--version']);
    return true;
  } catch (err) {
    // wrk --version prints its usage and exits 1: found all the same.
    return (err as { code?: unknown }).code === 1;
  }
}

/** wrk prints latencies as 1.23us / 4.56ms / 7.89s. */
function toMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text);
  if (!m) throw new Error(`wrk: cannot read the latency ${JSON.stringify(text)}`);
  const factor = { us: 0.001, ms: 1, s: 1000, m: 60_000 }[m[2] as 'us' | 'ms' | 's' | 'm'];
  return Number(m[1]) * factor;
}

export interface WrkOptions {
  readonly url: string;
  readonly clients: number;
  readonly seconds: number;
  readonly serializable: boolean;
}

/** One wrk run of `seconds` with `clients` connections on one thread; non-2xx answers count as errors. */
export async function runWrk(kind: 'put' | 'get', o: WrkOptions): Promise<BenchResult> {
  const args = ['-t1', `-c${o.clients}`, `-d${o.seconds}s`, '--timeout', '10s', '--latency', '-s', `${SCRIPTS}${kind}.lua`, o.url];
  const { stdout } = await run('wrk', args, { env: { ...process.env, SERIALIZABLE: o.serializable ? '1' : '0' }, timeout: (o.seconds + 30) * 1000 });
  const field = (re: RegExp): string => {
    const m = re.exec(stdout);
    if (!m) throw new Error(`wrk: unexpected output:\n${stdout}`);
    return m[1];
  };
  const requests = Number(field(/(\d+) requests in/));
  const seconds = toMs(field(/requests in ([\d.]+\w+),/)) / 1000;
  const errors = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0) + Number(/Socket errors: .*?timeout (\d+)/.exec(stdout)?.[1] ?? 0);
  return {
    requests,
    errors,
    seconds,
    perSecond: Number(field(/Requests\/sec:\s+([\d.]+)/)),
    p50Ms: toMs(field(/\s50%\s+(\S+)/)),
    p90Ms: toMs(field(/\s90%\s+(\S+)/)),
    p99Ms: toMs(field(/\s99%\s+(\S+)/)),
    p999Ms: Number(field(/cairn-latency-us p999 (\d+)/)) / 1000,
    meanMs: Number(field(/cairn-latency-us p999 \d+ mean ([\d.]+)/)) / 1000,
    maxMs: toMs(field(/Latency\s+\S+\s+\S+\s+(\S+)/)),
  };
}

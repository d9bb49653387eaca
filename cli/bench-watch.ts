import { randomBytes } from 'node:crypto';
import type { ConnectionOptions } from 'node:tls';
import type { Pool } from 'undici';
import { Client } from '../src/client/index.js';
import { benchKey, benchPools } from './bench-pools.js';
import { LatencyHistogram, type LatencySummary } from './latency-histogram.js';
import { Progress } from './progress.js';

// `cairn bench watch`: W watchers on a fresh prefix (through the client library,
// as applications watch) while C clients put TOTAL keys under it. Each event's
// delivery latency is from its put's acknowledgement to the moment a watcher sees
// it (an event seen before its put was acknowledged counts as 0 and is counted in
// `seenBeforeAck`); events/s is every watcher's events over the time from the
// first put to the last event seen.

export interface WatchBenchOptions {
  readonly endpoints: readonly string[];
  readonly watchers: number;
  /** Concurrent writers. */
  readonly clients: number;
  /** Puts in all; each watcher should see every one. */
  readonly total: number;
  readonly keySize: number;
  readonly valueSize: number;
  /** Longest wait for the watchers to start, and for the last events after the last put. */
  readonly timeoutMs: number;
  readonly tls?: ConnectionOptions;
  readonly progress?: boolean;
}

export interface WatchBenchResult extends Omit<LatencySummary, 'count'> {
  readonly watchers: number;
  readonly events: number;
  /** Failed puts. */
  readonly errors: number;
  /** Events seen, summed over watchers. */
  readonly delivered: number;
  /** Events acknowledged to a writer but not seen by some watcher before the deadline, summed over watchers. */
  readonly missing: number;
  readonly seenBeforeAck: number;
  readonly seconds: number;
  readonly eventsPerSecond: number;
  readonly putsPerSecond: number;
}

const POLL_MS = 20;

/** Waits until `done()` or the deadline; returns whether it got done. */
async function waitUntil(done: () => boolean, deadlineAt: number): Promise<boolean> {
  while (!done()) {
    if (Date.now() > deadlineAt) return false;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return true;
}

/** What the watchers saw and the writers got acknowledged; latencies matched by revision, whichever comes first. */
class Deliveries {
  readonly latencies: LatencyHistogram;
  /** Watchers that saw the sentinel: they are live. */
  ready = 0;
  delivered = 0;
  acked = 0;
  errors = 0;
  seenBeforeAck = 0;
  lastSeenAt = 0;
  readonly #ackedAt = new Map<number, number>();
  /** Sightings of revisions not yet acknowledged: revision -> how many. Bounded by watchers x puts in flight. */
  readonly #early = new Map<number, number>();

  constructor(readonly watchers: number) {
    this.latencies = new LatencyHistogram();
  }

  acknowledged(revision: number, at: number): void {
    this.acked++;
    this.#ackedAt.set(revision, at);
    const early = this.#early.get(revision);
    if (early === undefined) return;
    this.#early.delete(revision);
    for (let i = 0; i < early; i++) this.latencies.recordMs(0);
    this.seenBeforeAck += early;
  }

  seen(revision: number, events: number, at: number): void {
    this.delivered += events;
    this.lastSeenAt = Math.max(this.lastSeenAt, at);
    const acked = this.#ackedAt.get(revision);
    if (acked === undefined) this.#early.set(revision, (this.#early.get(revision) ?? 0) + events);
    else for (let i = 0; i < events; i++) this.latencies.recordMs(at - acked);
  }

  /** Every acknowledged put seen by every watcher. */
  get complete(): boolean {
    return this.delivered >= this.acked * this.watchers;
  }
}

/** Watchers from revision `from` (the sentinel's) on; resolves when they end, and aborts `stop` if one fails. */
function startWatchers(client: Client, prefix: string, from: number, d: Deliveries, stop: AbortController): Promise<void> {
  const one = async (): Promise<void> => {
    try {
      for await (const batch of client.watch(prefix, { prefix: true, startRevision: from, signal: stop.signal })) {
        if (batch.revision === from) d.ready += batch.events.length;
        else if (batch.events.length > 0) d.seen(batch.revision, batch.events.length, performance.now());
      }
    } catch (err) {
      if (!stop.signal.aborted) throw err;
    }
  };
  const all = Promise.all(Array.from({ length: d.watchers }, one)).then(() => undefined);
  all.catch(() => stop.abort());
  return all;
}

/** `o.clients` writers put `o.total` keys under `prefix`, noting each acknowledgement and its revision. */
async function putEvents(pools: readonly Pool[], o: WatchBenchOptions, prefix: string, d: Deliveries): Promise<void> {
  const value = Buffer.alloc(o.valueSize, 'v');
  let next = 0;
  const writer = async (c: number): Promise<void> => {
    const pool = pools[c % pools.length];
    for (let i = next++; i < o.total; i = next++) {
      try {
        const res = await pool.request({ method: 'PUT', path: `/v1/kv/${encodeURIComponent(benchKey(i, o.keySize, prefix))}`, body: value });
        await res.body.dump();
        const revision = Number(res.headers['x-cairn-revision']);
        if (res.statusCode === 200 && Number.isSafeInteger(revision)) d.acknowledged(revision, performance.now());
        else d.errors++;
      } catch {
        d.errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: o.clients }, (_, c) => writer(c)));
}

export async function runWatchBench(o: WatchBenchOptions): Promise<WatchBenchResult> {
  const prefix = `bench-watch/${randomBytes(4).toString('hex')}/`;
  const client = new Client({ endpoints: o.endpoints, timeoutMs: o.timeoutMs, ...(o.tls ? { tls: o.tls } : {}) });
  const pools = benchPools(o.endpoints, o.clients, o.tls);
  const stop = new AbortController();
  const d = new Deliveries(o.watchers);
  let progress: Progress | undefined;
  try {
    // Every watcher starts at the sentinel's revision: once each has seen it, all are live.
    const from = (await client.put(`${prefix}-ready`, '')).header.revision;
    const watching = startWatchers(client, prefix, from, d, stop);
    if (!(await waitUntil(() => d.ready >= o.watchers || stop.signal.aborted, Date.now() + o.timeoutMs))) throw new Error(`the watchers did not start within ${o.timeoutMs} ms`);
    if (stop.signal.aborted) await watching;

    progress = o.progress ? new Progress({ label: 'bench watch', total: o.total * o.watchers, done: () => d.delivered }) : undefined;
    const started = performance.now();
    await putEvents(pools, o, prefix, d);
    const putsEndedAt = performance.now();
    await waitUntil(() => d.complete || stop.signal.aborted, Date.now() + o.timeoutMs);
    if (stop.signal.aborted) await watching;
    const seconds = (Math.max(d.lastSeenAt, putsEndedAt) - started) / 1000;
    const putSeconds = (putsEndedAt - started) / 1000;
    const { count: _count, ...latency } = d.latencies.summary();
    return {
      watchers: o.watchers,
      events: o.total,
      errors: d.errors,
      delivered: d.delivered,
      missing: Math.max(0, d.acked * o.watchers - d.delivered),
      seenBeforeAck: d.seenBeforeAck,
      seconds,
      eventsPerSecond: seconds > 0 ? d.delivered / seconds : 0,
      putsPerSecond: putSeconds > 0 ? d.acked / putSeconds : 0,
      ...latency,
    };
  } finally {
    progress?.stop();
    stop.abort();
    await client.delete(prefix, { prefix: true }).catch(() => undefined);
    await client.close();
    await Promise.all(pools.map((p) => p.close()));
  }
}

export function watchResultJson(r: WatchBenchResult): Record<string, unknown> {
  return {
    kind: 'watch',
    watchers: r.watchers,
    events: r.events,
    errors: r.errors,
    delivered: r.delivered,
    missing: r.missing,
    seenBeforeAck: r.seenBeforeAck,
    seconds: r.seconds,
    eventsPerSecond: r.eventsPerSecond,
    putsPerSecond: r.putsPerSecond,
    latencyMs: { p50: r.p50Ms, p90: r.p90Ms, p99: r.p99Ms, p999: r.p999Ms, max: r.maxMs, mean: r.meanMs },
  };
}

export function formatWatchResult(r: WatchBenchResult): string {
  const f = (n: number): string => n.toFixed(2);
  return (
    `watch watchers=${r.watchers}: ${r.events} puts, ${r.delivered} events delivered in ${r.seconds.toFixed(2)} s = ${Math.round(r.eventsPerSecond)} events/s ` +
    `(puts ${Math.round(r.putsPerSecond)}/s), delivery latency ms p50 ${f(r.p50Ms)} p90 ${f(r.p90Ms)} p99 ${f(r.p99Ms)} p99.9 ${f(r.p999Ms)} max ${f(r.maxMs)}, ` +
    `missing ${r.missing}, put errors ${r.errors}`
  );
}

// One chaos run: a cluster behind fault proxies, concurrent clients, a
// transaction writer and reconnecting watchers, a seeded nemesis for a bounded
// time; then heal, let the cluster settle, and check everything. Prints its seed
// and schedule first, and one summary line at the end.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChaosCluster, pollUntil } from './chaos-cluster.js';
import { ClientFleet } from './client-fleet.js';
import { finalChecks } from './final-checks.js';
import { formatSchedule, makeSchedule, Nemesis, type FaultFamily } from './nemesis.js';
import { Random } from './random.js';
import type { Workload } from './workload.js';

export interface ScenarioOptions {
  readonly name: string;
  readonly seed: number;
  readonly size: number;
  readonly families: readonly FaultFamily[];
  /** How long the nemesis runs. */
  readonly faultMs: number;
  readonly clients?: number;
  readonly keySlots?: number;
  readonly opsPerKey?: number;
  readonly electionTimeoutMs?: number;
  readonly snapshotCount?: number;
  /** Search time per key for the linearizability checker. */
  readonly checkerBudgetMs?: number;
  /** Progress lines (the schedule, the nemesis as it goes). Default: none. */
  readonly log?: (line: string) => void;
}

export interface ScenarioReport {
  readonly name: string;
  readonly seed: number;
  readonly size: number;
  readonly faultMs: number;
  readonly ops: number;
  readonly okOps: number;
  readonly unknownOps: number;
  readonly failedOps: number;
  readonly writesAcknowledged: number;
  readonly unknownApplied: number;
  readonly watchEvents: number;
  readonly watchReconnects: number;
  /** Progress notices the watchers got (each checked). */
  readonly watchProgress: number;
  readonly finalRevision: number;
  readonly linearizability: string;
  readonly faults: string;
  readonly anomalies: readonly string[];
  readonly schedule: string;
  readonly nemesisLog: readonly string[];
  /** The last lines of every member's output (for a failure report). */
  readonly memberLogs: string;
}

const HEAL_DEADLINE_MS = 60_000;

export async function runScenario(options: ScenarioOptions): Promise<ScenarioReport> {
  const log = options.log ?? (() => undefined);
  const electionTimeoutMs = options.electionTimeoutMs ?? 500;
  const random = new Random(options.seed);
  const names = Array.from({ length: options.size }, (_, i) => `n${i + 1}`);
  const steps = makeSchedule(random.fork('schedule'), { memberNames: names, families: options.families, totalMs: options.faultMs, electionTimeoutMs });
  const schedule = formatSchedule(steps);
  log(`chaos ${options.name}: seed ${options.seed}, ${options.size} members, ${options.faultMs / 1000} s of faults\n${schedule}`);
  const dir = await mkdtemp(join(tmpdir(), 'cairn-chaos-'));
  let cluster: ChaosCluster | undefined;
  let fleet: ClientFleet | undefined;
  try {
    cluster = await ChaosCluster.start({ size: options.size, dir, random: random.fork('proxy'), electionTimeoutMs, snapshotCount: options.snapshotCount ?? 200 });
    const c = cluster;
    fleet = new ClientFleet(() => c.members, {
      clients: options.clients ?? 2 * options.size,
      keySlots: options.keySlots ?? 4,
      opsPerKey: options.opsPerKey ?? 250,
      watchPrefixes: ['', 'lin/', 'multi/'],
      longLivedWatchers: [2],
      random,
      tag: `s${options.seed}`,
    });
    fleet.start();
    const nemesis = new Nemesis(c, random.fork('nemesis'), steps);
    await nemesis.run();
    for (const line of nemesis.log) log(`  ${line}`);
    const anomalies = await recovery(c, fleet.workload);
    await fleet.stopWriting();
    const checked = await finalChecks(c, fleet.workload, fleet.writer, fleet.watchers, options.checkerBudgetMs ?? 10_000);
    anomalies.push(...checked.anomalies);
    await fleet.close();
    const { workload, watchers } = fleet;
    const count = (outcome: string): number => workload.ops.filter((op) => op.outcome === outcome).length;
    return {
      name: options.name,
      seed: options.seed,
      size: options.size,
      faultMs: options.faultMs,
      ops: workload.ops.length,
      okOps: count('ok'),
      unknownOps: count('unknown'),
      failedOps: count('fail'),
      writesAcknowledged: fleet.acknowledgedWrites,
      unknownApplied: checked.unknownApplied,
      watchEvents: watchers.reduce((sum, w) => sum + w.events.length, 0),
      watchReconnects: watchers.reduce((sum, w) => sum + w.connections.length - 1, 0),
      watchProgress: watchers.reduce((sum, w) => sum + w.progress.length, 0),
      finalRevision: checked.finalRevision,
      linearizability: checked.linearizability,
      faults: [...nemesis.counts].map(([kind, n]) => `${kind} ${n}`).join(', '),
      anomalies,
      schedule,
      nemesisLog: nemesis.log,
      memberLogs: anomalies.length > 0 ? c.tails() : '',
    };
  } finally {
    await fleet?.close();
    await cluster?.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Once healed, the cluster must become ready again and serve the clients, which have gone on all along. */
async function recovery(c: ChaosCluster, workload: Workload): Promise<string[]> {
  const anomalies: string[] = [];
  const healedAt = workload.ops.length;
  await c.waitAllReady(HEAL_DEADLINE_MS).catch((error: Error) => anomalies.push(`not every member was ready ${HEAL_DEADLINE_MS / 1000} s after healing: ${error.message}`));
  const served = async (): Promise<true | undefined> => (workload.ops.slice(healedAt).filter((op) => op.outcome === 'ok').length >= 20 ? true : undefined);
  await pollUntil('acknowledged operations after healing', 15_000, served).catch(() => anomalies.push('fewer than 20 operations succeeded in the 15 s after healing'));
  return anomalies;
}

/** The one line a run prints at its end. */
export function summaryLine(r: ScenarioReport): string {
  return (
    `chaos ${r.name} seed ${r.seed}: ${r.size} members, ${r.faultMs / 1000} s; ops ${r.ops} (ok ${r.okOps}, unknown ${r.unknownOps}, failed ${r.failedOps}; ` +
    `unknown writes applied ${r.unknownApplied}), acknowledged writes ${r.writesAcknowledged}, final revision ${r.finalRevision}, watch events ${r.watchEvents} ` +
    `(${r.watchReconnects} reconnects, ${r.watchProgress} progress), linearizability ${r.linearizability}, faults: ${r.faults || 'none'}; anomalies ${r.anomalies.length}`
  );
}

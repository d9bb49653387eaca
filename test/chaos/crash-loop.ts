// Crash consistency: under continuous writes, kill -9 a member at a random
// moment, restart it at once, and again, many times in a row (sometimes before
// it has even caught up, so recovery itself gets killed). Every restart must
// come up; at the end nothing acknowledged is lost and every member agrees.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChaosCluster, pollUntil } from './chaos-cluster.js';
import { ClientFleet } from './client-fleet.js';
import { finalChecks } from './final-checks.js';
import { probe } from './http.js';
import { Random } from './random.js';

export interface CrashLoopOptions {
  readonly seed: number;
  readonly size: number;
  /** Stop after this many kills... */
  readonly kills?: number;
  /** ...or after this long, whichever comes first (at least one must be given). */
  readonly durationMs?: number;
  readonly log?: (line: string) => void;
}

export interface CrashLoopReport {
  readonly seed: number;
  readonly size: number;
  readonly kills: number;
  readonly killsOfLeader: number;
  readonly killsDuringRecovery: number;
  readonly ops: number;
  readonly writesAcknowledged: number;
  readonly unknownOps: number;
  readonly watchEvents: number;
  readonly finalRevision: number;
  readonly linearizability: string;
  readonly anomalies: readonly string[];
  readonly memberLogs: string;
}

/** A restarted member must answer /livez (its data opened, its listeners up) within this. */
const RESTART_DEADLINE_MS = 20_000;

export async function runCrashLoop(options: CrashLoopOptions): Promise<CrashLoopReport> {
  const log = options.log ?? (() => undefined);
  const killsMax = options.kills ?? Infinity;
  const endAt = performance.now() + (options.durationMs ?? Infinity);
  if (killsMax === Infinity && options.durationMs === undefined) throw new RangeError('crash loop: give kills or durationMs');
  log(`chaos crash-${options.size}: seed ${options.seed}, kill -9 at random moments under writes (${options.kills ?? 'as many as fit'} kills${options.durationMs ? `, up to ${options.durationMs / 1000} s` : ''})`);
  const random = new Random(options.seed);
  const dir = await mkdtemp(join(tmpdir(), 'cairn-crash-'));
  let cluster: ChaosCluster | undefined;
  let fleet: ClientFleet | undefined;
  try {
    // A small snapshot count: kills land before, during and after snapshots and log compaction.
    cluster = await ChaosCluster.start({ size: options.size, dir, random: random.fork('proxy'), snapshotCount: 50 });
    const c = cluster;
    fleet = new ClientFleet(() => c.members, { clients: 4, keySlots: 4, opsPerKey: 200, watchPrefixes: [''], longLivedWatchers: [], random, tag: `crash${options.seed}` });
    fleet.start();
    const kills = await killRepeatedly(c, random.fork('kills'), killsMax, endAt);
    log(`  ${kills.count} kills (${kills.ofLeader} of the leader, ${kills.duringRecovery} during recovery)`);
    const anomalies = [...kills.anomalies];
    await c.waitAllReady(60_000).catch((error: Error) => anomalies.push(`not every member ready at the end: ${error.message}`));
    await fleet.stopWriting();
    const checked = await finalChecks(c, fleet.workload, fleet.writer, fleet.watchers, 20_000);
    anomalies.push(...checked.anomalies);
    await fleet.close();
    return {
      seed: options.seed,
      size: options.size,
      kills: kills.count,
      killsOfLeader: kills.ofLeader,
      killsDuringRecovery: kills.duringRecovery,
      ops: fleet.workload.ops.length,
      writesAcknowledged: fleet.acknowledgedWrites,
      unknownOps: fleet.workload.ops.filter((op) => op.outcome === 'unknown').length,
      watchEvents: fleet.watchers[0].events.length,
      finalRevision: checked.finalRevision,
      linearizability: checked.linearizability,
      anomalies,
      memberLogs: anomalies.length > 0 ? c.tails() : '',
    };
  } finally {
    await fleet?.close();
    await cluster?.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Kills a member at a random moment, restarts it at once, again and again; stops early if one does not come back. */
async function killRepeatedly(c: ChaosCluster, choices: Random, killsMax: number, endAt: number) {
  const result = { count: 0, ofLeader: 0, duringRecovery: 0, anomalies: [] as string[] };
  while (result.count < killsMax && performance.now() < endAt) {
    const victim = choices.chance(0.4) ? ((await c.leader()) ?? choices.pick(c.members)) : choices.pick(c.members);
    const recovering = !(await c.isReady(victim));
    await new Promise((resolve) => setTimeout(resolve, choices.int(0, 300)));
    const wasLeader = (await c.leader()) === victim;
    await victim.process.kill('SIGKILL');
    result.count++;
    if (wasLeader) result.ofLeader++;
    if (recovering) result.duringRecovery++;
    victim.process.start();
    const livez = async (): Promise<boolean | undefined> => {
      if (victim.process.unexpectedExits.length > 0) return false;
      return (await probe(`${victim.clientUrl}/livez`, { timeoutMs: 1000, agent: c.agent }))?.status === 200 ? true : undefined;
    };
    if (!(await pollUntil(`${victim.name} to answer /livez`, RESTART_DEADLINE_MS, livez).catch(() => false))) {
      result.anomalies.push(`${victim.name} did not come back after kill ${result.count}:\n${victim.process.tail(20)}`);
      break;
    }
    // Mostly let it catch up before the next kill; sometimes not, so recovery itself is killed.
    if (choices.chance(0.5)) await c.waitAllReady(RESTART_DEADLINE_MS).catch((error: Error) => result.anomalies.push(`after kill ${result.count}: ${error.message}`));
  }
  return result;
}

export function crashSummaryLine(r: CrashLoopReport): string {
  return (
    `chaos crash-${r.size} seed ${r.seed}: ${r.kills} kill -9 (${r.killsOfLeader} of the leader, ${r.killsDuringRecovery} during recovery); ops ${r.ops} ` +
    `(unknown ${r.unknownOps}), acknowledged writes ${r.writesAcknowledged}, final revision ${r.finalRevision}, watch events ${r.watchEvents}, ` +
    `linearizability ${r.linearizability}; anomalies ${r.anomalies.length}`
  );
}

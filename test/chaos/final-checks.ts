// The end of every chaos run, once faults are healed and clients stopped: the
// members converge, every member's history is the same, nothing acknowledged
// is lost, watchers saw exactly their prefix's history, and the clients'
// history is linearizable.

import { checkHistory } from '../lin/index.js';
import { pollUntil, type ChaosCluster } from './chaos-cluster.js';
import { checkNothingLost, compareHistories, readFullHistory, type HistoryEvent } from './history-checks.js';
import { probe } from './http.js';
import type { MultiWriter } from './multi-writer.js';
import { checkPrevKv, checkWatcher, previousVersions } from './watch-checks.js';
import type { Watcher } from './watcher.js';
import type { Workload } from './workload.js';

export interface FinalCheckResult {
  readonly anomalies: string[];
  readonly finalRevision: number;
  readonly unknownApplied: number;
  readonly linearizability: string;
}

export async function finalChecks(c: ChaosCluster, workload: Workload, writer: MultiWriter | undefined, watchers: readonly Watcher[], checkerBudgetMs: number): Promise<FinalCheckResult> {
  const anomalies: string[] = [];
  const finalRevision = await settle(c, anomalies);
  const histories = new Map<string, HistoryEvent[]>();
  for (const m of c.members) {
    try {
      histories.set(m.name, await readFullHistory(m.clientUrl, finalRevision, c.agent, 30_000));
    } catch (error) {
      anomalies.push(`could not read the history of ${m.name}: ${(error as Error).message}`);
    }
  }
  if (histories.size > 1) anomalies.push(...compareHistories(histories));
  const history: HistoryEvent[] = histories.values().next().value ?? [];
  const previous = previousVersions(history);
  anomalies.push(...checkPrevKv('history', history, previous));
  anomalies.push(...(await compareHashes(c, finalRevision)));
  const lost = checkNothingLost([...workload.writes, ...(writer?.writes ?? [])], history);
  anomalies.push(...lost.anomalies);

  for (const w of watchers) {
    const lastOfPrefix = history.findLast((e) => e.kv.key.startsWith(w.options.prefix))?.revision ?? 0;
    if (!(await w.waitFor(lastOfPrefix, 20_000))) anomalies.push(`${w.name} did not reach revision ${lastOfPrefix} within 20 s of the end (at ${w.lastRevision})`);
  }
  for (const w of watchers) w.stop();
  for (const w of watchers) anomalies.push(...checkWatcher(w, history, previous));

  const lin = checkHistory(workload.history.history(), { budgetMs: checkerBudgetMs });
  if (lin.verdict === 'not-linearizable') anomalies.push(`not linearizable (key ${lin.failingKey}):\n${lin.explanation}`);
  anomalies.push(...workload.oddities, ...(writer?.oddities ?? []));
  for (const m of c.members) for (const exit of m.process.unexpectedExits) anomalies.push(`${m.name} exited by itself (code ${exit.code}, signal ${exit.signal})`);
  return {
    anomalies,
    finalRevision,
    unknownApplied: lost.unknownApplied,
    linearizability: lin.verdict === 'unknown' ? `unknown (${lin.unknownKeys?.length} keys out of budget)` : lin.verdict,
  };
}

/** Waits until every member applied everything it knows committed, at the same revision; returns it. */
async function settle(c: ChaosCluster, anomalies: string[]): Promise<number> {
  const statuses = () => Promise.all(c.members.map((m) => probe(`${m.clientUrl}/v1/status`, { timeoutMs: 2000, agent: c.agent })));
  try {
    return await pollUntil(
      'every member at the same revision',
      30_000,
      async () => {
        const answers = await statuses();
        if (!answers.every((s) => s?.status === 200 && s.body.appliedIndex === s.body.commitIndex)) return undefined;
        const revisions = answers.map((s) => s!.body.revision as number);
        return revisions.every((r) => r === revisions[0]) ? revisions[0] : undefined;
      },
      200,
    );
  } catch (error) {
    const answers = await statuses();
    anomalies.push(`members did not converge: ${(error as Error).message}; revisions ${answers.map((s, i) => `${c.members[i].name} ${s?.body.revision ?? 'no answer'}`).join(', ')}`);
    return Math.min(...answers.map((s) => (s?.status === 200 ? (s.body.revision as number) : 0)));
  }
}

/** The same hash of the live keys at the final revision on every member (GET /v1/hash). */
async function compareHashes(c: ChaosCluster, revision: number): Promise<string[]> {
  if (revision === 0) return [];
  const hashes = await Promise.all(
    c.members.map(async (m) => [m.name, (await probe(`${m.clientUrl}/v1/hash?revision=${revision}`, { timeoutMs: 5000, agent: c.agent }))?.body.hash] as const),
  );
  const distinct = new Set(hashes.map(([, h]) => h));
  if (distinct.size === 1 && !distinct.has(undefined)) return [];
  return [`members hash their keys at revision ${revision} differently: ${hashes.map(([n, h]) => `${n} ${String(h).slice(0, 12)}`).join(', ')}`];
}

// Checks on the final state of a run: every member holds the same history (read
// as a watch from revision 1, nothing being compacted in these runs), every
// acknowledged write is in it, no write reported failed is, no value appears
// twice or from nowhere.

import type { Agent } from 'undici';
import { readWatch, type WatchKv } from './sse-reader.js';
import type { WriteRecord } from './workload.js';

export interface HistoryEvent {
  readonly revision: number;
  readonly type: 'put' | 'delete';
  readonly kv: WatchKv;
  readonly prevKv?: WatchKv;
}

/** After the last event of the final revision, wait this long for stragglers of the same revision. */
const SETTLE_MS = 400;

/** Reads every event from revision 1 through `finalRevision` from one member. */
export async function readFullHistory(clientUrl: string, finalRevision: number, agent: Agent, timeoutMs: number): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  if (finalRevision === 0) return events;
  const controller = new AbortController();
  const deadline = setTimeout(() => controller.abort(), timeoutMs);
  let settle: NodeJS.Timeout | undefined;
  try {
    for await (const notice of readWatch({ clientUrl, prefix: '', prevKv: true, startRevision: 1, agent, signal: controller.signal, connectTimeoutMs: timeoutMs })) {
      if (notice.kind === 'put' || notice.kind === 'delete') {
        if (notice.revision > finalRevision) break;
        events.push({ revision: notice.revision, type: notice.kind, kv: notice.kv, ...(notice.prevKv ? { prevKv: notice.prevKv } : {}) });
        if (notice.revision === finalRevision && settle === undefined) settle = setTimeout(() => controller.abort(), SETTLE_MS);
      } else if (notice.kind === 'compacted' || notice.kind === 'closed') {
        throw new Error(`history from ${clientUrl}: ${notice.kind}`);
      }
    }
  } catch (error) {
    const reachedEnd = events.length > 0 && events[events.length - 1].revision === finalRevision;
    if (!reachedEnd) throw new Error(`history from ${clientUrl} stopped at revision ${events.at(-1)?.revision ?? 0} of ${finalRevision}: ${(error as Error).message}`);
  } finally {
    clearTimeout(deadline);
    clearTimeout(settle);
  }
  return events;
}

export function describeEvent(e: HistoryEvent): string {
  return `rev ${e.revision} ${e.type} ${e.kv.key}${e.type === 'put' ? `=${e.kv.value}` : ''} (mod ${e.kv.modRevision}, create ${e.kv.createRevision}, v${e.kv.version})${e.prevKv ? ` prev ${e.prevKv.value}@${e.prevKv.modRevision}` : ''}`;
}

/** Every member's history must be the same, event for event. */
export function compareHistories(histories: ReadonlyMap<string, readonly HistoryEvent[]>): string[] {
  const anomalies: string[] = [];
  const [[firstName, first], ...rest] = [...histories];
  for (const [name, other] of rest) {
    const n = Math.max(first.length, other.length);
    for (let i = 0; i < n; i++) {
      const a = first[i] ? describeEvent(first[i]) : 'nothing';
      const b = other[i] ? describeEvent(other[i]) : 'nothing';
      if (a !== b) {
        anomalies.push(`histories differ: event ${i} is ${a} on ${firstName} but ${b} on ${name}`);
        break;
      }
    }
  }
  return anomalies;
}

export interface NothingLostReport {
  readonly anomalies: string[];
  /** Writes with an unknown outcome that did take effect, and that did not. */
  readonly unknownApplied: number;
  readonly unknownNotApplied: number;
}

/** Acknowledged writes are in the history at their revision; failed ones are not; each value appears once, from a write. */
export function checkNothingLost(writes: readonly WriteRecord[], history: readonly HistoryEvent[]): NothingLostReport {
  const anomalies: string[] = [];
  const byRevision = new Map<number, HistoryEvent[]>();
  const byValue = new Map<string, HistoryEvent[]>();
  for (const e of history) {
    byRevision.set(e.revision, [...(byRevision.get(e.revision) ?? []), e]);
    if (e.type === 'put') byValue.set(e.kv.value, [...(byValue.get(e.kv.value) ?? []), e]);
  }
  for (const [value, events] of byValue) {
    if (events.length > 1) anomalies.push(`value ${value} was applied ${events.length} times: ${events.map(describeEvent).join('; ')}`);
  }
  const written = new Set<string>();
  let unknownApplied = 0;
  let unknownNotApplied = 0;
  for (const w of writes) {
    for (const c of w.changes) if (c.value !== undefined) written.add(c.value);
    const puts = w.changes.filter((c) => c.type === 'put');
    const applied = puts.some((c) => byValue.has(c.value!));
    if (w.outcome === 'ok' && !w.noEffect) {
      if (w.revision === undefined) {
        anomalies.push(`acknowledged without a revision: ${w.label}`);
        continue;
      }
      const at = byRevision.get(w.revision) ?? [];
      for (const c of w.changes) {
        const found = at.some((e) => e.type === c.type && e.kv.key === c.key && (c.type === 'delete' || e.kv.value === c.value));
        if (found) continue;
        const elsewhere = c.value === undefined ? undefined : byValue.get(c.value)?.[0];
        anomalies.push(
          `acknowledged write lost: ${w.label} at revision ${w.revision} (history there: ${at.map(describeEvent).join('; ') || 'nothing'}; ` +
            `${elsewhere ? `the value is at revision ${elsewhere.revision} instead` : c.type === 'put' ? 'the value is nowhere in the history' : 'no delete of the key there'})`,
        );
      }
    } else if (w.outcome === 'fail' || (w.outcome === 'ok' && w.noEffect)) {
      if (applied) anomalies.push(`a write answered as ${w.outcome === 'fail' ? 'failed' : 'not applied'} took effect: ${w.label}`);
    } else if (w.outcome === 'unknown' && puts.length > 0) {
      if (applied) unknownApplied++;
      else unknownNotApplied++;
    }
  }
  for (const value of byValue.keys()) if (!written.has(value)) anomalies.push(`value ${value} in the history was never written by the test`);
  return { anomalies, unknownApplied, unknownNotApplied };
}

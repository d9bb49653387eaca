// What a watcher saw, against the final history of its prefix: revisions
// strictly increase, no event twice, a transaction's events together and on one
// connection, no gap, each resume starts exactly after the last event, progress
// never goes backwards, prevKv is the key's previous version.

import { describeEvent, type HistoryEvent } from './history-checks.js';
import type { WatchKv } from './sse-reader.js';
import type { Watcher } from './watcher.js';

/** Anomalies listed per kind before the rest are only counted. */
const SHOWN_PER_KIND = 5;

class AnomalyList {
  readonly lines: string[] = [];
  private readonly counts = new Map<string, number>();
  add(kind: string, line: string): void {
    const n = (this.counts.get(kind) ?? 0) + 1;
    this.counts.set(kind, n);
    if (n <= SHOWN_PER_KIND) this.lines.push(line);
  }
  done(): string[] {
    for (const [kind, n] of this.counts) if (n > SHOWN_PER_KIND) this.lines.push(`... and ${n - SHOWN_PER_KIND} more of: ${kind}`);
    return this.lines;
  }
}

const eventKey = (revision: number, key: string): string => `${revision}\u0000${key}`;

/** The previous version of each event's key, from the whole history (keys of every prefix). */
export function previousVersions(history: readonly HistoryEvent[]): Map<string, WatchKv | undefined> {
  const live = new Map<string, WatchKv>();
  const previous = new Map<string, WatchKv | undefined>();
  for (const e of history) {
    previous.set(eventKey(e.revision, e.kv.key), live.get(e.kv.key));
    if (e.type === 'put') live.set(e.kv.key, e.kv);
    else live.delete(e.kv.key);
  }
  return previous;
}

function samePrev(got: WatchKv | undefined, want: WatchKv | undefined): boolean {
  if (!got || !want) return got === want;
  return got.value === want.value && got.modRevision === want.modRevision && got.version === want.version && got.createRevision === want.createRevision;
}

const show = (kv: WatchKv | undefined): string => (kv ? `${kv.value}@${kv.modRevision}` : 'none');

/** prevKv on every event of a history must be the key's previous version. */
export function checkPrevKv(label: string, events: readonly HistoryEvent[], previous: ReadonlyMap<string, WatchKv | undefined>): string[] {
  const anomalies = new AnomalyList();
  for (const e of events) {
    const want = previous.get(eventKey(e.revision, e.kv.key));
    if (!samePrev(e.prevKv, want)) anomalies.add('prevKv', `${label}: wrong prevKv on ${describeEvent(e)}: expected ${show(want)}`);
  }
  return anomalies.done();
}

export function checkWatcher(watcher: Watcher, history: readonly HistoryEvent[], previous: ReadonlyMap<string, WatchKv | undefined>): string[] {
  const name = watcher.name;
  const anomalies = new AnomalyList();
  const got = watcher.events;
  const last = watcher.lastRevision;
  const expected = history.filter((e) => e.kv.key.startsWith(watcher.options.prefix) && e.revision >= watcher.options.startRevision && e.revision <= last);

  const seen = new Set<string>();
  for (let i = 0; i < got.length; i++) {
    const e = got[i];
    const id = eventKey(e.revision, e.kv.key);
    if (seen.has(id)) anomalies.add('duplicate', `${name}: event delivered twice: ${describeEvent(e)} (connection ${e.connection})`);
    seen.add(id);
    if (i === 0) continue;
    const before = got[i - 1];
    if (e.revision < before.revision) anomalies.add('order', `${name}: revision went back from ${before.revision} to ${e.revision} (connections ${before.connection}, ${e.connection})`);
    if (e.revision === before.revision && e.connection !== before.connection) {
      anomalies.add('split', `${name}: revision ${e.revision} split across connections ${before.connection} and ${e.connection}`);
    }
  }
  const wanted = new Set(expected.map((e) => eventKey(e.revision, e.kv.key)));
  reportGaps(watcher, expected, seen, anomalies);
  for (const e of got) if (!wanted.has(eventKey(e.revision, e.kv.key))) anomalies.add('phantom', `${name}: got an event not in the history: ${describeEvent(e)}`);
  const byId = new Map(expected.map((e) => [eventKey(e.revision, e.kv.key), e]));
  for (const e of got) {
    const want = byId.get(eventKey(e.revision, e.kv.key));
    if (want && (want.type !== e.type || want.kv.value !== e.kv.value || want.kv.modRevision !== e.kv.modRevision || want.kv.version !== e.kv.version || want.kv.createRevision !== e.kv.createRevision)) {
      anomalies.add('content', `${name}: event differs from the history: got ${describeEvent(e)}, history has ${describeEvent(want)}`);
    }
    const prev = previous.get(eventKey(e.revision, e.kv.key));
    if (!samePrev(e.prevKv, prev)) anomalies.add('prevKv', `${name}: wrong prevKv on ${describeEvent(e)}: expected ${show(prev)}`);
  }
  checkResumes(watcher, expected, anomalies);
  checkProgress(watcher, anomalies);
  for (const line of watcher.oddities) anomalies.add('oddity', line);
  return anomalies.done();
}

/** Missed events, as runs of consecutive ones, with the connections on either side (to tell a bad resume from a bad stream). */
function reportGaps(watcher: Watcher, expected: readonly HistoryEvent[], seen: ReadonlySet<string>, anomalies: AnomalyList): void {
  const delivered = watcher.events;
  const describeSide = (revision: number, before: boolean): string => {
    const e = before ? delivered.findLast((x) => x.revision < revision) : delivered.find((x) => x.revision > revision);
    if (!e) return before ? 'nothing before' : 'nothing after';
    const c = watcher.connections[e.connection];
    return `${before ? 'last before' : 'next'}: rev ${e.revision} on connection ${c.index} to ${c.member} (resumed after ${c.resumeAfter}, ended by ${c.endedBy})`;
  };
  let run: HistoryEvent[] = [];
  const flush = (): void => {
    if (run.length === 0) return;
    const first = run[0];
    const last = run[run.length - 1];
    anomalies.add('gap', `${watcher.name}: missed ${run.length} event(s), ${describeEvent(first)}${run.length > 1 ? ` .. ${describeEvent(last)}` : ''}; ${describeSide(first.revision, true)}; ${describeSide(last.revision, false)}`);
    run = [];
  };
  for (const e of expected) {
    if (seen.has(eventKey(e.revision, e.kv.key))) flush();
    else run.push(e);
  }
  flush();
}

/** The first event of every resumed connection is the first event of the prefix after the revision it resumed from. */
function checkResumes(watcher: Watcher, expected: readonly HistoryEvent[], anomalies: AnomalyList): void {
  const firstOf = new Map<number, (typeof watcher.events)[number]>();
  for (const e of watcher.events) if (!firstOf.has(e.connection)) firstOf.set(e.connection, e);
  for (const c of watcher.connections) {
    const first = firstOf.get(c.index);
    if (!first || c.resumeAfter === 0) continue;
    const want = expected.find((e) => e.revision > c.resumeAfter);
    if (!want || want.revision !== first.revision || want.kv.key !== first.kv.key) {
      anomalies.add('resume', `${watcher.name}: connection ${c.index} to ${c.member} resumed after ${c.resumeAfter} and started with ${describeEvent(first)}; expected ${want ? describeEvent(want) : 'nothing'}`);
    }
  }
}

/** A progress notice never names a revision below one already delivered or announced. */
function checkProgress(watcher: Watcher, anomalies: AnomalyList): void {
  let highest = 0;
  let highestConnection = -1;
  for (const p of watcher.progress) {
    const member = watcher.connections[p.connection]?.member;
    if (p.revision < p.afterRevision) {
      anomalies.add('progress', `${watcher.name}: progress ${p.revision} on connection ${p.connection} (${member}) after event revision ${p.afterRevision} was delivered`);
    } else if (p.revision < highest) {
      const where = highestConnection === p.connection ? 'on the same connection' : `after ${highest} on connection ${highestConnection}`;
      anomalies.add('progress', `${watcher.name}: progress went back to ${p.revision} on connection ${p.connection} (${member}), ${where}`);
    }
    if (p.revision > highest) {
      highest = p.revision;
      highestConnection = p.connection;
    }
  }
}

import { afterAll, describe, expect, it } from 'vitest';
import { Agent } from 'undici';
import { checkNothingLost, compareHistories, type HistoryEvent } from './history-checks.js';
import { Random } from './random.js';
import { checkPrevKv, checkWatcher, previousVersions } from './watch-checks.js';
import { Watcher } from './watcher.js';
import type { WriteRecord } from './workload.js';

// The end-of-run checks on made-up histories: each must flag the fault it is
// named for, and stay quiet on a clean history.

function put(revision: number, key: string, value: string, version = 1, createRevision = revision): HistoryEvent {
  return { revision, type: 'put', kv: { key, value, modRevision: revision, createRevision, version } };
}

/** rev 1: a=1; rev 2: b=1; rev 3: a=2; rev 4: delete b; rev 5: a=3 and c=1 (one transaction). */
function history(): HistoryEvent[] {
  const events = [
    put(1, 'a', 'a1'),
    put(2, 'b', 'b1'),
    put(3, 'a', 'a2', 2, 1),
    { revision: 4, type: 'delete' as const, kv: { key: 'b', value: '', modRevision: 4, createRevision: 0, version: 0 } },
    put(5, 'a', 'a3', 3, 1),
    put(5, 'c', 'c1'),
  ];
  const previous = previousVersions(events);
  return events.map((e) => {
    const prev = previous.get(`${e.revision}\u0000${e.kv.key}`);
    return prev ? { ...e, prevKv: prev } : e;
  });
}

function write(label: string, changes: WriteRecord['changes'], outcome: WriteRecord['outcome'], revision?: number): WriteRecord {
  return { label, changes, outcome, ...(revision !== undefined ? { revision } : {}) };
}

describe('nothing-lost check', () => {
  const clean = [
    write('a1', [{ key: 'a', type: 'put', value: 'a1' }], 'ok', 1),
    write('b1', [{ key: 'b', type: 'put', value: 'b1' }], 'ok', 2),
    write('a2', [{ key: 'a', type: 'put', value: 'a2' }], 'unknown'),
    write('del b', [{ key: 'b', type: 'delete' }], 'ok', 4),
    write('txn', [{ key: 'a', type: 'put', value: 'a3' }, { key: 'c', type: 'put', value: 'c1' }], 'ok', 5),
    write('never', [{ key: 'a', type: 'put', value: 'zz' }], 'fail'),
  ];

  it('passes a history holding every acknowledged write, and counts unknown writes that took effect', () => {
    const report = checkNothingLost(clean, history());
    expect(report.anomalies).toEqual([]);
    expect(report.unknownApplied).toBe(1);
  });

  it('flags an acknowledged write missing at its revision', () => {
    const lost = [...clean, write('lost', [{ key: 'd', type: 'put', value: 'd1' }], 'ok', 5)];
    expect(checkNothingLost(lost, history()).anomalies.join('\n')).toMatch(/acknowledged write lost: lost/);
  });

  it('flags a write answered as failed that took effect', () => {
    const failed = clean.map((w) => (w.label === 'a2' ? { ...w, outcome: 'fail' as const } : w));
    expect(checkNothingLost(failed, history()).anomalies.join('\n')).toMatch(/answered as failed took effect: a2/);
  });

  it('flags a value applied twice and a value nobody wrote', () => {
    const events = [...history(), put(6, 'a', 'a1', 4, 1), put(7, 'x', 'from nowhere')];
    const text = checkNothingLost(clean, events).anomalies.join('\n');
    expect(text).toMatch(/value a1 was applied 2 times/);
    expect(text).toMatch(/value from nowhere in the history was never written/);
  });

  it('compares histories of members event by event', () => {
    const h = history();
    expect(compareHistories(new Map([['n1', h], ['n2', h]]))).toEqual([]);
    const other = h.map((e) => (e.revision === 3 ? put(3, 'a', 'other', 2, 1) : e));
    expect(compareHistories(new Map([['n1', h], ['n2', other]]))[0]).toMatch(/event 2 is rev 3 put a=a2 .* on n1 but rev 3 put a=other/);
  });

  it('checks prevKv against the previous version of the key', () => {
    const h = history();
    const previous = previousVersions(h);
    expect(checkPrevKv('h', h, previous)).toEqual([]);
    const wrong = h.map((e) => (e.revision === 3 ? { ...e, prevKv: { ...e.prevKv!, value: 'stale' } } : e));
    expect(checkPrevKv('h', wrong, previous)[0]).toMatch(/wrong prevKv on rev 3 put a=a2 .*expected a1@1/);
  });
});

describe('watch checks', () => {
  const agent = new Agent();
  afterAll(() => agent.close());

  /** A watcher that never ran, given what it "received". */
  function watcher(prefix: string, received: { connection: number; event: HistoryEvent }[], connections: { member: string; resumeAfter: number }[], progress: { connection: number; revision: number; afterRevision: number }[] = []): Watcher {
    const w = new Watcher(() => [], { name: 'w', prefix, startRevision: 1, agent, random: new Random(1), idleMs: 1000, lifetimeMs: [1000, 2000] });
    connections.forEach((c, index) => w.connections.push({ index, member: c.member, resumeAfter: c.resumeAfter, events: 0, endedBy: 'test' }));
    for (const { connection, event } of received) w.events.push({ connection, revision: event.revision, type: event.type, kv: event.kv, ...(event.prevKv ? { prevKv: event.prevKv } : {}) });
    w.progress.push(...progress);
    return w;
  }

  const h = history();
  const previous = previousVersions(h);
  const all = h.map((event) => ({ connection: 0, event }));

  it('passes a watcher that saw its prefix exactly, resumed correctly, with rising progress', () => {
    const received = h.map((event) => ({ connection: event.revision <= 2 ? 0 : 1, event }));
    const w = watcher('', received, [{ member: 'n1', resumeAfter: 0 }, { member: 'n2', resumeAfter: 2 }], [{ connection: 1, revision: 5, afterRevision: 5 }]);
    expect(checkWatcher(w, h, previous)).toEqual([]);
    const onlyA = watcher('a', all.filter((r) => r.event.kv.key === 'a'), [{ member: 'n1', resumeAfter: 0 }]);
    expect(checkWatcher(onlyA, h, previous)).toEqual([]);
  });

  it('flags a gap, naming the connections around it', () => {
    const w = watcher('', all.filter((r) => r.event.revision !== 3), [{ member: 'n1', resumeAfter: 0 }]);
    expect(checkWatcher(w, h, previous).join('\n')).toMatch(/missed 1 event\(s\), rev 3 put a=a2.*last before: rev 2 on connection 0 to n1/);
  });

  it('flags a duplicate, a revision going back, and a resume that starts too early', () => {
    // Connection 0 delivered revisions 1-3; connection 1 resumed after 3 but started again at 2.
    const received = [...all.slice(0, 3), ...[h[1], ...h.slice(3)].map((event) => ({ connection: 1, event }))];
    const w = watcher('', received, [{ member: 'n1', resumeAfter: 0 }, { member: 'n2', resumeAfter: 3 }]);
    const text = checkWatcher(w, h, previous).join('\n');
    expect(text).toMatch(/delivered twice: rev 2 put b=b1/);
    expect(text).toMatch(/revision went back from 3 to 2/);
    expect(text).toMatch(/connection 1 to n2 resumed after 3 and started with rev 2 put b=b1.*expected rev 4 delete b/);
  });

  it('flags a resume that starts later than the revision after the last event', () => {
    const received = h.filter((e) => e.revision !== 3).map((event) => ({ connection: event.revision <= 2 ? 0 : 1, event }));
    const w = watcher('', received, [{ member: 'n1', resumeAfter: 0 }, { member: 'n3', resumeAfter: 2 }]);
    expect(checkWatcher(w, h, previous).join('\n')).toMatch(/connection 1 to n3 resumed after 2 and started with rev 4 delete b.*expected rev 3 put a=a2/);
  });

  it("flags a transaction's events split across connections", () => {
    const received = h.map((event, i) => ({ connection: i < 5 ? 0 : 1, event }));
    const w = watcher('', received, [{ member: 'n1', resumeAfter: 0 }, { member: 'n2', resumeAfter: 5 }]);
    expect(checkWatcher(w, h, previous).join('\n')).toMatch(/revision 5 split across connections 0 and 1/);
  });

  it('flags progress going backwards or behind delivered events', () => {
    const w = watcher('', all, [{ member: 'n1', resumeAfter: 0 }, { member: 'n2', resumeAfter: 5 }], [
      { connection: 0, revision: 5, afterRevision: 5 },
      { connection: 1, revision: 4, afterRevision: 5 },
    ]);
    expect(checkWatcher(w, h, previous).join('\n')).toMatch(/progress 4 on connection 1 \(n2\) after event revision 5/);
  });

  it('flags a wrong prevKv and a changed value', () => {
    const received = all.map((r) => (r.event.revision === 3 ? { ...r, event: { ...r.event, kv: { ...r.event.kv, value: 'bent' }, prevKv: undefined } } : r));
    const text = checkWatcher(watcher('', received, [{ member: 'n1', resumeAfter: 0 }]), h, previous).join('\n');
    expect(text).toMatch(/event differs from the history: got rev 3 put a=bent/);
    expect(text).toMatch(/wrong prevKv on rev 3 put a=bent .*expected a1@1/);
  });
});

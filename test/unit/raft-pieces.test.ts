import { describe, expect, it } from 'vitest';
import { Inflights } from '../../src/raft/inflights.js';
import { Progress } from '../../src/raft/progress.js';
import { committedIndex, hasQuorum, voteResult } from '../../src/raft/quorum.js';
import { RaftLog } from '../../src/raft/raft-log.js';
import { LogCompactedError, MemoryStorage, RaftInvariantError, nodeId, type Entry } from '../../src/raft/index.js';

const entry = (index: number, term: number, text = ''): Entry => ({ index, term, type: 'normal', data: new TextEncoder().encode(text) });
const terms = (es: readonly Entry[]) => es.map((e) => `${e.index}@${e.term}`);

describe('MemoryStorage', () => {
  it('appends, truncates a conflicting suffix, and compacts', () => {
    const s = new MemoryStorage();
    s.append([entry(1, 1), entry(2, 1), entry(3, 1)]);
    s.append([entry(3, 2), entry(4, 2)]);
    expect(terms(s.entries(1, 5, Infinity))).toEqual(['1@1', '2@1', '3@2', '4@2']);
    s.compact(2);
    expect(s.firstIndex()).toBe(3);
    expect(s.term(2)).toBe(1); // the dummy keeps the compacted entry's term
    expect(() => s.term(1)).toThrow(LogCompactedError);
    expect(() => s.entries(2, 4, Infinity)).toThrow(LogCompactedError);
  });

  it('limits entries by bytes but always returns at least one', () => {
    const s = new MemoryStorage();
    s.append([entry(1, 1, 'x'.repeat(100)), entry(2, 1, 'y'.repeat(100))]);
    expect(s.entries(1, 3, 1)).toHaveLength(1);
    expect(s.entries(1, 3, 1000)).toHaveLength(2);
  });

  it('restores from a snapshot, replacing the log and the conf state', () => {
    const s = new MemoryStorage();
    s.append([entry(1, 1)]);
    const cs = { voters: [nodeId('a')], learners: [] };
    s.applySnapshot({ metadata: { index: 10, term: 3, confState: cs }, data: new Uint8Array() });
    expect(s.firstIndex()).toBe(11);
    expect(s.lastIndex()).toBe(10);
    expect(s.term(10)).toBe(3);
    expect(s.initialState().confState).toEqual(cs);
  });
});

describe('RaftLog', () => {
  function logWith(...es: Entry[]): RaftLog {
    const s = new MemoryStorage();
    s.append(es);
    return new RaftLog(s, Infinity);
  }

  it('maybeAppend refuses when the previous entry does not match', () => {
    const log = logWith(entry(1, 1), entry(2, 2));
    expect(log.maybeAppend(2, 1, 0, [entry(3, 2)])).toBeUndefined();
    expect(log.lastIndex()).toBe(2);
  });

  it('maybeAppend replaces a conflicting uncommitted suffix and moves commit', () => {
    const log = logWith(entry(1, 1), entry(2, 1), entry(3, 1));
    expect(log.maybeAppend(1, 1, 2, [entry(2, 2), entry(3, 2)])).toBe(3);
    expect(terms(log.slice(1, 4, Infinity))).toEqual(['1@1', '2@2', '3@2']);
    expect(log.committed).toBe(2);
  });

  it('maybeAppend never moves commit past what the leader sent', () => {
    const log = logWith(entry(1, 1), entry(2, 1), entry(3, 1));
    log.maybeAppend(1, 1, 10, [entry(2, 1)]);
    expect(log.committed).toBe(2); // entry 3 may still be replaced by this leader
  });

  it('refuses to overwrite a committed entry (an invariant, not an input error)', () => {
    const log = logWith(entry(1, 1), entry(2, 1));
    log.commitTo(2);
    expect(() => log.maybeAppend(1, 1, 2, [entry(2, 2)])).toThrow(RaftInvariantError);
  });

  it('findConflictByTerm skips a whole term of entries', () => {
    const log = logWith(entry(1, 1), entry(2, 2), entry(3, 2), entry(4, 4), entry(5, 4));
    expect(log.findConflictByTerm(5, 3)).toEqual({ index: 3, term: 2 });
    expect(log.findConflictByTerm(5, 4)).toEqual({ index: 5, term: 4 });
    expect(log.findConflictByTerm(5, 0)).toEqual({ index: 0, term: 0 });
  });

  it('commits by counting only an entry of the given term', () => {
    const log = logWith(entry(1, 1), entry(2, 2));
    expect(log.maybeCommit(2, 3)).toBe(false);
    expect(log.maybeCommit(2, 2)).toBe(true);
    expect(log.committed).toBe(2);
  });

  it('stableTo ignores entries replaced while they were being persisted', () => {
    const log = logWith(entry(1, 1));
    log.append([entry(2, 1), entry(3, 1)]);
    log.append([entry(3, 2)]); // replaced before the write of 3@1 completed
    log.stableTo(3, 1);
    expect(log.unstable.entries.map((e) => e.term)).toEqual([1, 2]);
    log.stableTo(3, 2);
    expect(log.unstable.entries).toEqual([]);
  });

  it('isUpToDate compares last term, then last index', () => {
    const log = logWith(entry(1, 1), entry(2, 2));
    expect(log.isUpToDate(1, 3)).toBe(true);
    expect(log.isUpToDate(2, 2)).toBe(true);
    expect(log.isUpToDate(1, 2)).toBe(false);
    expect(log.isUpToDate(9, 1)).toBe(false);
  });
});

describe('Progress and Inflights', () => {
  it('inflights are bounded by count and by bytes', () => {
    const byCount = new Inflights(2, 0);
    byCount.add(1, 10);
    byCount.add(2, 10);
    expect(byCount.full()).toBe(true);
    byCount.freeLE(1);
    expect(byCount.full()).toBe(false);
    const byBytes = new Inflights(100, 15);
    byBytes.add(1, 10);
    expect(byBytes.full()).toBe(false);
    byBytes.add(2, 10);
    expect(byBytes.full()).toBe(true);
  });

  it('a probe decrements on rejection using the hint, never below match + 1', () => {
    const pr = new Progress(10, false, 4, 0);
    pr.match = 3;
    expect(pr.maybeDecrTo(9, 5)).toBe(true);
    expect(pr.next).toBe(6);
    expect(pr.maybeDecrTo(9, 5)).toBe(false); // stale: we already moved past 9
    expect(pr.maybeDecrTo(5, 0)).toBe(true);
    expect(pr.next).toBe(4);
  });

  it('replicate ignores rejections at or below match and pauses when the window is full', () => {
    const pr = new Progress(1, false, 1, 0);
    pr.maybeUpdate(4);
    pr.becomeReplicate();
    expect(pr.maybeDecrTo(3, 0)).toBe(false);
    pr.sentAppend(6, 10);
    expect(pr.next).toBe(7);
    expect(pr.isPaused()).toBe(true);
    pr.freeAcked(6);
    expect(pr.isPaused()).toBe(false);
  });

  it('a heartbeat answer lets one append past a full window (its appends may all be lost)', () => {
    const pr = new Progress(1, false, 1, 0);
    pr.maybeUpdate(4);
    pr.becomeReplicate();
    pr.sentAppend(6, 10);
    expect(pr.isPaused()).toBe(true);
    pr.paused = false; // what the leader does on a heartbeat answer
    pr.sentAppend(7, 10);
    expect(pr.inflights.count()).toBe(2);
    expect(pr.isPaused()).toBe(true);
  });

  it('after a snapshot, probing resumes after the snapshot index', () => {
    const pr = new Progress(1, false, 4, 0);
    pr.becomeSnapshot(20);
    expect(pr.isPaused()).toBe(true);
    pr.becomeProbe();
    expect(pr.next).toBe(21);
  });
});

describe('quorum', () => {
  const ids = ['a', 'b', 'c', 'd', 'e'].map(nodeId);
  it('commit index is what a majority has', () => {
    const match = new Map(ids.map((id, i) => [id, [5, 9, 7, 1, 3][i]]));
    expect(committedIndex(ids, (id) => match.get(id)!)).toBe(5);
    expect(committedIndex(ids.slice(0, 3), (id) => match.get(id)!)).toBe(7);
  });

  it('vote results: won, lost, pending', () => {
    const three = ids.slice(0, 3);
    expect(voteResult(three, new Map([[ids[0], true]]))).toBe('pending');
    expect(voteResult(three, new Map([[ids[0], true], [ids[1], true]]))).toBe('won');
    expect(voteResult(three, new Map([[ids[0], true], [ids[1], false], [ids[2], false]]))).toBe('lost');
  });

  it('hasQuorum counts only the voters given', () => {
    expect(hasQuorum(ids.slice(0, 3), (id) => id === ids[0] || id === ids[1])).toBe(true);
    expect(hasQuorum(ids, (id) => id === ids[0] || id === ids[1])).toBe(false);
  });
});
